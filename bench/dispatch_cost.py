#!/usr/bin/env python3
"""
What one ready socket costs the reactor's loop: Twisted's own epoll dispatch
against hoodypipe's (``hoodypipe.bytepath.dispatch``), in one process.

Each event is a 1 KiB ``send`` into a socketpair and one ``doIteration(0)``
that finds the other end ready and reads it (``recv``): the system calls
are the same for both, so the difference is the loop's own work per event,
``log.callWithLogger`` and the log context it pushes. The figure is the
best of ``--repeats`` runs of ``--events`` events, each loop alternating.

    python bench/dispatch_cost.py
    python bench/dispatch_cost.py --events 50000 --repeats 7
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twisted.internet import abstract, epollreactor  # noqa: E402

from hoodypipe.bytepath.dispatch import use_lean_dispatch  # noqa: E402

PAYLOAD = b"x" * 1024


class _Reader(abstract.FileDescriptor):
    """A socket read whenever it is ready, with a connection-like log prefix."""

    def __init__(self, reactor: Any, sock: socket.socket) -> None:
        super().__init__(reactor=reactor)
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()

    def logPrefix(self) -> str:
        return "HTTPChannel,5,127.0.0.1"

    def doRead(self) -> None:
        self.sock.recv(65536)


class _Loop:
    """One reactor with one reader, stock or lean."""

    def __init__(self, lean: bool) -> None:
        self.reactor = epollreactor.EPollReactor()
        self.ours, self.peer = socket.socketpair()
        self.ours.setblocking(False)
        self.reader = _Reader(self.reactor, self.ours)
        self.reactor.addReader(self.reader)
        if lean and not use_lean_dispatch(self.reactor):
            raise SystemExit("this Twisted's epoll reactor cannot take the lean dispatch")

    def run(self, events: int) -> float:
        """ns per event."""
        send, iterate = self.peer.send, self.reactor.doIteration
        started = time.perf_counter_ns()
        for _ in range(events):
            send(PAYLOAD)
            iterate(0)
        return (time.perf_counter_ns() - started) / events

    def close(self) -> None:
        self.reactor.removeAll()
        if self.reactor.waker is not None:
            self.reactor.waker.connectionLost(None)
        self.reactor._poller.close()
        self.ours.close()
        self.peer.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    loops = {"twisted": _Loop(lean=False), "hoodypipe": _Loop(lean=True)}
    best = {name: float("inf") for name in loops}
    try:
        for loop in loops.values():
            loop.run(args.events // 10)  # warm-up
        for _ in range(args.repeats):
            for name, loop in loops.items():
                best[name] = min(best[name], loop.run(args.events))
    finally:
        for loop in loops.values():
            loop.close()
    saved = best["twisted"] - best["hoodypipe"]
    print(f"one ready socket: send 1 KiB, doIteration(0), recv; best of {args.repeats} x "
          f"{args.events} events")
    print(f"  Twisted's epoll dispatch   {best['twisted'] / 1000:6.2f} us per event")
    print(f"  hoodypipe's dispatch       {best['hoodypipe'] / 1000:6.2f} us per event")
    print(f"  saved                      {saved / 1000:6.2f} us per event "
          f"({saved / best['twisted']:.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
