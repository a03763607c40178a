"""
Graceful drain: on SIGTERM, let running transfers finish before exiting.

twistd stops the root service when the reactor is asked to stop. A plain
``MultiService`` would stop every child at once, closing the listeners while
transfers still run; ``DrainService`` is the root instead and holds its
children (the app and the listeners) open until the registry is empty or the
grace period is over. New senders and receivers meanwhile get a 503 with a
reason from the registry, so clients and proxies see why, instead of a
refused connection.

A second SIGTERM or SIGINT (an operator's second Ctrl-C) cuts the drain
short: what is left fails at once, as when the grace runs out, and the
process exits. Twisted's own handler would call ``reactor.stop()`` again,
which only logs a ``ReactorNotRunning`` traceback and changes nothing;
``second_signal_cuts_drain`` puts this in its place.
"""

from __future__ import annotations

from collections.abc import Callable
from types import FrameType
from typing import Any, Protocol

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from hoodypipe.core.registry import SHUTTING_DOWN
from hoodypipe.ops.sdnotify import SystemdNotifier


class Drainable(Protocol):
    """The part of ``PipeRegistry`` the drain needs."""

    draining: bool

    def start_draining(self) -> None: ...

    def active_count(self) -> int: ...

    def waiting_count(self) -> int: ...

    def fail_all(self, reason: str) -> None: ...


class DrainService(MultiService):
    """
    A root service whose stop first drains the registry, then stops children.

    ``stopService`` returns a Deferred that fires when the drain is over and
    every child has stopped; twistd keeps the reactor running until then.
    """

    log = Logger()

    def __init__(
        self,
        registry: Drainable,
        clock: IReactorTime,
        grace: float,
        notifier: SystemdNotifier | None = None,
        poll_interval: float = 0.25,
        flush_delay: float = 1.0,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call, unused-ignore]
        self.registry = registry
        self.clock = clock
        self.grace = grace
        self.notifier = notifier if notifier is not None else SystemdNotifier(None)
        self.poll_interval = poll_interval
        self.flush_delay = flush_delay
        self._stopping: Deferred[None] | None = None
        self._drained: Deferred[None] | None = None
        self._poll: IDelayedCall | None = None
        self._deadline = 0.0
        self._last_left = 0
        self._saw_pipes = False
        self._cut_short = False
        self._finishing = False

    @property
    def draining(self) -> bool:
        """Whether the stop has begun (the drain is running or over)."""
        return self._stopping is not None

    def remaining(self) -> int:
        return self.registry.active_count() + self.registry.waiting_count()

    def stopService(self) -> Deferred[None]:
        if self._stopping is not None:
            return self._stopping
        left = self.remaining()
        self.log.info(
            "draining: {left} pipe(s) open, grace {grace}s", left=left, grace=self.grace
        )
        self.notifier.stopping(f"Draining {left} pipe(s)")
        self.registry.start_draining()
        self._deadline = self.clock.seconds() + (0.0 if self._cut_short else self.grace)
        self._drained = Deferred()
        stopping = self._drained
        stopping.addCallback(lambda _: self._stop_children())
        self._stopping = stopping
        self._check()
        return stopping

    def _check(self) -> None:
        self._poll = None
        left = self.remaining()
        if left == 0:
            self.log.info("drained: every pipe has ended")
            self._finish(self.flush_delay if self._saw_pipes else 0.0)
            return
        self._saw_pipes = True
        if self.clock.seconds() >= self._deadline:
            if self._cut_short:
                self.log.warn("second stop signal: failing {left} pipe(s) now", left=left)
            else:
                self.log.warn(
                    "grace period of {grace}s over: failing {left} pipe(s)",
                    grace=self.grace,
                    left=left,
                )
            self.registry.fail_all(SHUTTING_DOWN)
            self._finish(self.flush_delay)
            return
        if left != self._last_left:
            self.notifier.status(f"Draining {left} pipe(s)")
            self._last_left = left
        wait = min(self.poll_interval, max(0.0, self._deadline - self.clock.seconds()))
        self._poll = self.clock.callLater(wait, self._check)

    def _finish(self, flush: float) -> None:
        """Fire after ``flush`` seconds, so the last bytes written reach clients."""
        drained = self._drained
        assert drained is not None
        self._finishing = True
        if flush <= 0:
            drained.callback(None)
        else:
            self._poll = self.clock.callLater(flush, drained.callback, None)

    def cut_short(self) -> None:
        """A second stop signal: end the grace now (see the module doc)."""
        if self._finishing:
            self.log.info("second stop signal: already stopping")
            return
        if self._cut_short:
            return
        self._cut_short = True
        if self._drained is None:
            return  # not draining yet: stopService will start with no grace
        if self._poll is not None and self._poll.active():
            self._poll.cancel()
        self._deadline = self.clock.seconds()
        self._check()

    def _stop_children(self) -> Deferred[None]:
        stopped: Deferred[object] = super().stopService()  # type: ignore[no-untyped-call, unused-ignore]
        return stopped.addCallback(lambda _: None)


SignalHandler = Callable[[int, "FrameType | None"], None]


def second_signal_cuts_drain(reactor: Any, drain: DrainService) -> None:
    """Route every stop signal after the first to ``drain.cut_short``.

    The reactor's ``sigInt``, ``sigTerm`` and ``sigBreak`` are what it
    installs as signal handlers when it starts running, so this must run
    before ``reactor.run()`` (twistd calls ``makeService`` first). The first
    signal still goes to Twisted's own handler, which logs it and stops the
    reactor (and so starts the drain); a signal that comes once the stop has
    begun, however it began, is handed to the drain in the reactor's thread.
    """
    signalled = False

    def wrap(first: SignalHandler) -> SignalHandler:
        def handler(number: int, frame: FrameType | None = None) -> None:
            nonlocal signalled
            if signalled or drain.draining:
                reactor.callFromThread(drain.cut_short)
                return
            signalled = True
            first(number, frame)

        return handler

    for name in ("sigInt", "sigTerm", "sigBreak"):
        first = getattr(reactor, name, None)
        if callable(first):
            setattr(reactor, name, wrap(first))
