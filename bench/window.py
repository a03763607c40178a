#!/usr/bin/env python3
"""
The latency row seen from inside each server: how long the server itself
takes between accepting a sender and writing to the waiting receiver.

``run.py --only latency`` times a 1 KiB transfer from the client's side,
which includes what no server controls (the kernel's loopback, waking the
clients). Here each server's own system calls are traced with ``perf``
(syscall tracepoints: no ptrace, no change to the servers) while the same
samples run, interleaved, and for every sample the server's window is read
off its trace:

- ``accept -> read``: the sender's ``accept4`` returning, to the first read
  of its socket (the request);
- ``read -> write``: that read, to the first write to the receiver's socket
  (parsing, routing, joining the pipe, the receiver's response head);
- ``window``: the two together.

    python bench/window.py                      # 300 samples each, about 20 s
    python bench/window.py --samples 1000 --pin

Needs ``perf`` (Debian's linux-perf) with the right to trace another process
(root, or ``kernel.perf_event_paranoid`` <= 1). Tracing costs each server a
few microseconds per system call, so the windows read somewhat longer than
untraced; both servers pay it per call. A diagnostic, not a target: the
row's figure stays ``run.py``'s.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import floor  # noqa: E402  (its start(): a server's pid once it accepts)
import run  # noqa: E402


@dataclass
class Traced:
    """One server under trace (``run.latency_sample`` needs its name and port)."""

    name: str
    port: int
    pid: int
    trace: Path
    client: list[float] = field(default_factory=list)


def _kill_if_running(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


READS = ("sys_enter_recvfrom", "sys_enter_read")
WRITES = ("sys_enter_sendto", "sys_enter_writev", "sys_enter_write")
EVENTS = ",".join(f"syscalls:{name}" for name in ("sys_exit_accept4", *READS, *WRITES))
_LINE = re.compile(r"\s*([\d.]+):\s+syscalls:(\S+):\s*(.*)")
_FD = re.compile(r"fd: 0x([0-9a-f]+)")
_RETURNED = re.compile(r"0x([0-9a-f]+)\s*$")


def windows(script: str) -> list[tuple[float, float]]:
    """(accept -> read, read -> write) in us for each sample in a ``perf script``.

    A sample is two accepts (the receiver's GET, then the sender's PUT); its
    window closes at the first write to the receiver's socket.
    """
    found: list[tuple[float, float]] = []
    accepted: list[int] = []
    sample: dict[str, float | int] | None = None
    for line in script.splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        at, event, args = float(match[1]), match[2], match[3]
        if event == "sys_exit_accept4":
            returned = _RETURNED.search(args)
            if returned is None:
                continue  # a failed accept (negative: printed in decimal)
            accepted.append(int(returned[1], 16))
            if len(accepted) >= 2:
                sample = {"accepted": at, "receiver": accepted[-2], "sender": accepted[-1]}
            continue
        fd_match = _FD.search(args)
        if sample is None or fd_match is None:
            continue
        fd = int(fd_match[1], 16)
        if event in READS and fd == sample["sender"] and "read" not in sample:
            sample["read"] = at
        elif event in WRITES and fd == sample["receiver"] and "read" in sample:
            found.append(((sample["read"] - sample["accepted"]) * 1e6,
                          (at - sample["read"]) * 1e6))
            sample = None
            accepted.clear()
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=300, help="per server (default 300)")
    parser.add_argument("--warmup", type=int, default=50, help="untraced, per server")
    parser.add_argument("--settle-ms", type=float, default=10.0)
    parser.add_argument("--checkout", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--twistd", type=Path, default=Path(sys.executable).with_name("twistd"))
    parser.add_argument("--pin", action="store_true",
                        help=f"servers on CPU {run.SERVER_CPU}, samples on CPU {run.CLIENT_CPU}")
    args = parser.parse_args()
    if shutil.which("perf") is None:
        parser.error("needs perf (Debian: apt-get install linux-perf)")
    run.ensure_piping_server()
    if args.pin:
        os.sched_setaffinity(0, {run.CLIENT_CPU})
    body = os.urandom(1024)
    settle = args.settle_ms / 1000
    servers: list[Traced] = []
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        for name in ("hoodypipe", "piping-server"):
            port = run.free_port()
            argv, _ = run.server_command(name, port, args.twistd, args.pin)
            env = (run.server_env(args.checkout.resolve()) if name == "hoodypipe"
                   else dict(os.environ))
            pid = floor.start(argv, env, port, stack)
            servers.append(Traced(name, port, pid, Path(tmp) / f"{name}.perf"))
        for _ in range(args.warmup):
            for server in servers:
                run.latency_sample(server, body, settle)  # type: ignore[arg-type]
        tracers = []
        for server in servers:
            tracer = subprocess.Popen(
                ["perf", "record", "-q", "-e", EVENTS, "-p", str(server.pid),
                 "-o", str(server.trace)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            stack.callback(_kill_if_running, tracer)
            tracers.append(tracer)
        time.sleep(1.0)  # perf attaches
        for _ in range(args.samples):
            for server in servers:
                ms = run.latency_sample(server, body, settle)  # type: ignore[arg-type]
                if ms is not None:
                    server.client.append(ms)
        for tracer in tracers:
            tracer.send_signal(signal.SIGINT)
            _, err = tracer.communicate(timeout=60)
            if tracer.returncode not in (0, -signal.SIGINT):
                raise run.BenchError(f"perf record failed: {err.decode(errors='replace')[-300:]}")
        print(f"1 KiB latency from inside each server, {args.samples} interleaved samples"
              f"{' (pinned)' if args.pin else ''}: medians in us (p10-p90)")
        for server in servers:
            script = subprocess.run(
                ["perf", "script", "-i", str(server.trace), "-F", "time,event,trace"],
                capture_output=True, text=True, check=True).stdout
            found = windows(script)
            if not found:
                raise run.BenchError(f"no sample found in {server.name}'s trace")
            parts = {
                "accept -> read": [a for a, _ in found],
                "read -> write": [b for _, b in found],
                "window": [a + b for a, b in found],
            }
            print(f"  {server.name:14s} client {statistics.median(server.client) * 1000:5.0f}"
                  f"  ({len(found)} traced)")
            for label, values in parts.items():
                print(f"    {label:16s} {statistics.median(values):6.0f}"
                      f"  ({run.percentile(values, 0.1):.0f}-{run.percentile(values, 0.9):.0f})")
    return 0


if __name__ == "__main__":
    run.run_script(main)
