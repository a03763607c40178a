"""
The rendezvous rules: pipes, their parties, their states and their timers.

Pure logic. Parties are anything providing ``ISender``/``IReceiver`` (the web
layer's adapters, or fakes in tests); time comes from an ``IReactorTime`` so
every timer here is driven by ``Clock`` in the unit tests. The byte path is
started through ``start_transfer`` and reports back with ``transfer_ended``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import attrs
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from zope.interface import Interface

from hoodypipe.core.errors import Refusal
from hoodypipe.core.events import (
    COMPLETE,
    FAILED,
    IDLE,
    STREAMING,
    WAITING,
    ITransferObserver,
    PipeStatus,
    TransferResult,
)
from hoodypipe.settings import Settings

SENDER_GONE = "Sender disconnected"
IDLE_TIMEOUT = "Idle timeout"
SHUTTING_DOWN = "Server shutting down"


class ISender(Interface):
    """The sending party, as the rules see it."""

    def status(line: str) -> None:
        """Append one ``[INFO] ...`` line to the sender's status body."""

    def end(error: str | None) -> None:
        """End the sender's response: ``error`` as its last line, or cleanly."""


class IReceiver(Interface):
    """A receiving party that has not started streaming yet."""

    def refuse(refusal: Refusal) -> None:
        """Answer this receiver with an error instead of a body."""


class ITransfer(Interface):
    """A running byte path, as the rules see it."""

    def abort(reason: str) -> None:
        """Stop at once and fail every party with ``reason``."""


@attrs.define(eq=False)
class Party:
    """A sender or receiver waiting on a pipe, with its own wait timer."""

    handle: object
    wait_timer: IDelayedCall | None = None


@attrs.define(eq=False)
class Pipe:
    """One name's current transfer. ``bytes`` is the byte path's counter."""

    name: str
    n: int
    transfer_id: str
    created_at: float
    state: str = WAITING
    sender: Party | None = None
    receivers: list[Party] = attrs.Factory(list)
    active_receivers: int = 0
    bytes: int = 0
    total_bytes: int | None = None
    started_at: float | None = None
    transfer: object | None = None
    keepalive: IDelayedCall | None = None
    idle_check: IDelayedCall | None = None
    idle_seen_bytes: int = -1
    idle_seen_at: float = 0.0

    def status(self) -> PipeStatus:
        return PipeStatus(
            name=self.name,
            state=self.state,
            has_sender=self.sender is not None,
            receivers=(self.active_receivers if self.state == STREAMING
                       else len(self.receivers)),
            total_receivers=self.n,
            bytes=self.bytes,
            total_bytes=self.total_bytes,
            waiting_since=self.created_at,
            started_at=self.started_at,
            transfer_id=self.transfer_id,
        )


StartTransfer = Callable[[Pipe], object]


class PipeRegistry:
    """Every live pipe by name, and the rules for joining, waiting and ending."""

    log = Logger()

    def __init__(self, clock: IReactorTime, settings: Settings) -> None:
        self._clock = clock
        self._settings = settings
        self._pipes: dict[str, Pipe] = {}
        self._observers: list[ITransferObserver] = []
        self._start_transfer: StartTransfer | None = None
        self._active = 0
        self.draining = False

    # -- wiring -------------------------------------------------------------

    def set_transfer_starter(self, start: StartTransfer) -> None:
        """Give the byte path: called with a full pipe, returns an ``ITransfer``."""
        self._start_transfer = start

    def add_observer(self, observer: ITransferObserver) -> None:
        self._observers.append(observer)

    # -- reading ------------------------------------------------------------

    def status(self, name: str) -> PipeStatus:
        pipe = self._pipes.get(name)
        return PipeStatus(name=name, state=IDLE) if pipe is None else pipe.status()

    def get(self, name: str) -> Pipe | None:
        return self._pipes.get(name)

    def active_count(self) -> int:
        return self._active

    def waiting_count(self) -> int:
        return len(self._pipes) - self._active

    # -- joining ------------------------------------------------------------

    def join_sender(
        self, name: str, n: int, wait: float, sender: ISender,
        total_bytes: int | None,
    ) -> Pipe:
        """Register a sender or raise a Refusal; the sender then gets status lines."""
        pipe = self._pipe_for(name, n)
        if pipe.sender is not None:
            raise Refusal(400, "Another sender is already connected on this path.",
                          "busy")
        if len(pipe.receivers) >= pipe.n:
            self._check_active_capacity()
        party = Party(sender)
        pipe.sender = party
        pipe.total_bytes = total_bytes
        party.wait_timer = self._clock.callLater(
            wait, self._sender_timed_out, pipe, party)
        self._remember(pipe)
        sender.status(f"[INFO] Waiting for {pipe.n} receiver(s) to connect...")
        if pipe.receivers:
            sender.status(f"[INFO] {len(pipe.receivers)} receiver(s) already connected.")
        self._changed(pipe)
        self._start_if_ready(pipe)
        if pipe.state == WAITING and pipe.sender is party:
            self._schedule_keepalive(pipe)
        return pipe

    def join_receiver(self, name: str, n: int, wait: float, receiver: IReceiver) -> Pipe:
        """Register a receiver or raise a Refusal; it is answered when streaming."""
        pipe = self._pipe_for(name, n)
        if len(pipe.receivers) >= pipe.n:
            raise Refusal(400, "The number of receivers has reached its limit.", "busy")
        if pipe.sender is not None and len(pipe.receivers) + 1 >= pipe.n:
            self._check_active_capacity()
        party = Party(receiver)
        pipe.receivers.append(party)
        party.wait_timer = self._clock.callLater(
            wait, self._receiver_timed_out, pipe, party)
        self._remember(pipe)
        if pipe.sender is not None:
            self._sender(pipe).status("[INFO] A receiver connected.")
        self._changed(pipe)
        self._start_if_ready(pipe)
        return pipe

    def leave(self, pipe: Pipe, handle: object) -> None:
        """A party went away before streaming started."""
        if pipe.state != WAITING or self._pipes.get(pipe.name) is not pipe:
            return
        if pipe.sender is not None and pipe.sender.handle is handle:
            self._cancel(pipe.sender.wait_timer)
            pipe.sender = None
            self._sender_failed_waiting(pipe, SENDER_GONE)
            return
        for party in pipe.receivers:
            if party.handle is handle:
                self._cancel(party.wait_timer)
                pipe.receivers.remove(party)
                if pipe.sender is not None:
                    self._sender(pipe).status("[INFO] A receiver disconnected.")
                self._forget_if_empty(pipe)
                self._changed(pipe)
                return

    def _pipe_for(self, name: str, n: int) -> Pipe:
        pipe = self._pipes.get(name)
        if pipe is None:
            if self.draining:
                raise Refusal(503, "Server is shutting down; try again shortly.",
                              "draining")
            if self.waiting_count() >= self._settings.max_waiting:
                raise Refusal(429, "Too many waiting pipes; try again later.",
                              "capacity")
            if self._active >= self._settings.max_active:
                raise Refusal(429, "Server at maximum active transfer capacity.",
                              "capacity")
            return Pipe(name=name, n=n, transfer_id=uuid.uuid4().hex,
                        created_at=self._clock.seconds())
        if pipe.state != WAITING:
            raise Refusal(400, "A transfer is already in progress on this path.", "busy")
        if pipe.n != n:
            raise Refusal(400, f"Number of receivers mismatch: this path expects "
                          f"n={pipe.n}, got n={n}.", "mismatch")
        return pipe

    def _check_active_capacity(self) -> None:
        """Refuse the party that would start a transfer when none may start."""
        if self._active >= self._settings.max_active:
            raise Refusal(429, "Server at maximum active transfer capacity.", "capacity")

    def _remember(self, pipe: Pipe) -> None:
        self._pipes.setdefault(pipe.name, pipe)

    # -- waiting ------------------------------------------------------------

    def _schedule_keepalive(self, pipe: Pipe) -> None:
        pipe.keepalive = self._clock.callLater(
            self._settings.keepalive_interval, self._keepalive, pipe)

    def _keepalive(self, pipe: Pipe) -> None:
        pipe.keepalive = None
        if pipe.state != WAITING or pipe.sender is None:
            return
        missing = pipe.n - len(pipe.receivers)
        self._sender(pipe).status(f"[INFO] Still waiting for {missing} receiver(s)...")
        self._schedule_keepalive(pipe)

    def _sender_timed_out(self, pipe: Pipe, party: Party) -> None:
        party.wait_timer = None
        if pipe.sender is not party or pipe.state != WAITING:
            return
        pipe.sender = None
        self._cancel(pipe.keepalive)
        ISender(party.handle).end("Timed out waiting for receivers.")
        self._sender_failed_waiting(pipe, "Timed out waiting for receivers")

    def _receiver_timed_out(self, pipe: Pipe, party: Party) -> None:
        party.wait_timer = None
        if party not in pipe.receivers or pipe.state != WAITING:
            return
        pipe.receivers.remove(party)
        missing = "receivers" if pipe.sender is not None else "sender"
        IReceiver(party.handle).refuse(
            Refusal(408, f"Timed out waiting for {missing}.", "wait_timeout"))
        if pipe.sender is not None:
            self._sender(pipe).status("[INFO] A receiver disconnected.")
        self._forget_if_empty(pipe)
        self._changed(pipe)

    def _sender_failed_waiting(self, pipe: Pipe, reason: str) -> None:
        """The sender left before streaming: that transfer failed; receivers may stay."""
        self._cancel(pipe.keepalive)
        now = self._clock.seconds()
        result = TransferResult(
            name=pipe.name, transfer_id=pipe.transfer_id, ok=False, bytes=0,
            total_bytes=pipe.total_bytes, started_at=pipe.created_at, ended_at=now,
            receivers=len(pipe.receivers), reason=reason)
        pipe.total_bytes = None
        pipe.transfer_id = uuid.uuid4().hex
        pipe.created_at = now
        self._forget_if_empty(pipe)
        self._done(result)
        self._changed(pipe)

    def _forget_if_empty(self, pipe: Pipe) -> None:
        if pipe.sender is None and not pipe.receivers:
            if self._pipes.get(pipe.name) is pipe:
                del self._pipes[pipe.name]
            pipe.state = IDLE

    # -- streaming ----------------------------------------------------------

    def _start_if_ready(self, pipe: Pipe) -> None:
        if pipe.sender is None or len(pipe.receivers) < pipe.n:
            return
        if self._active >= self._settings.max_active:
            self._fail_waiting_everyone(
                pipe, Refusal(429, "Server at maximum active transfer capacity.",
                              "capacity"))
            return
        for party in [pipe.sender, *pipe.receivers]:
            self._cancel(party.wait_timer)
        self._cancel(pipe.keepalive)
        pipe.state = STREAMING
        pipe.started_at = self._clock.seconds()
        pipe.active_receivers = pipe.n
        self._active += 1
        self._sender(pipe).status(f"[INFO] Streaming to {pipe.n} receiver(s)...")
        pipe.idle_seen_at = pipe.started_at
        pipe.idle_seen_bytes = 0
        self._schedule_idle_check(pipe)
        self._changed(pipe)
        if self._start_transfer is None:
            raise RuntimeError("no byte path was given to the registry")
        try:
            pipe.transfer = self._start_transfer(pipe)
        except Exception:
            self.log.failure("starting the transfer on {name} failed", name=pipe.name)
            self._end_unstarted(pipe, "Internal server error")

    def _end_unstarted(self, pipe: Pipe, reason: str) -> None:
        """A streaming pipe with no byte path: answer every party, then end it."""
        refusal = Refusal(500, reason + ".", "internal")
        for party in pipe.receivers:
            IReceiver(party.handle).refuse(refusal)
        if pipe.sender is not None:
            ISender(pipe.sender.handle).end(reason + ".")
        self.transfer_ended(pipe, ok=False, reason=reason)

    def _fail_waiting_everyone(self, pipe: Pipe, refusal: Refusal) -> None:
        for party in pipe.receivers:
            self._cancel(party.wait_timer)
            IReceiver(party.handle).refuse(refusal)
        pipe.receivers.clear()
        if pipe.sender is not None:
            self._cancel(pipe.sender.wait_timer)
            ISender(pipe.sender.handle).end(refusal.reason)
            pipe.sender = None
            self._sender_failed_waiting(pipe, refusal.reason.rstrip("."))
        else:
            self._forget_if_empty(pipe)
            self._changed(pipe)

    def receiver_left(self, pipe: Pipe) -> None:
        """A receiver dropped mid-stream; the byte path carries on with the rest."""
        if pipe.state != STREAMING:
            return
        pipe.active_receivers -= 1
        self._sender(pipe).status("[INFO] A receiver disconnected.")
        self._changed(pipe)

    def _schedule_idle_check(self, pipe: Pipe) -> None:
        step = max(self._settings.idle_timeout / 10, 0.05)
        pipe.idle_check = self._clock.callLater(step, self._idle_check, pipe)

    def _idle_check(self, pipe: Pipe) -> None:
        pipe.idle_check = None
        if pipe.state != STREAMING:
            return
        now = self._clock.seconds()
        if pipe.bytes != pipe.idle_seen_bytes:
            pipe.idle_seen_bytes = pipe.bytes
            pipe.idle_seen_at = now
        elif now - pipe.idle_seen_at >= self._settings.idle_timeout:
            self.log.info("pipe {name} idle for {seconds}s: ending it",
                          name=pipe.name, seconds=self._settings.idle_timeout)
            self._abort(pipe, IDLE_TIMEOUT)
            return
        self._schedule_idle_check(pipe)

    def _abort(self, pipe: Pipe, reason: str) -> None:
        if pipe.transfer is None:
            self._end_unstarted(pipe, reason)
            return
        ITransfer(pipe.transfer).abort(reason)
        if pipe.state == STREAMING:
            self.transfer_ended(pipe, ok=False, reason=reason)

    def transfer_ended(self, pipe: Pipe, ok: bool, reason: str | None) -> None:
        """The byte path finished (or failed); called once per transfer."""
        if pipe.state != STREAMING:
            return
        pipe.state = COMPLETE if ok else FAILED
        self._active -= 1
        self._cancel(pipe.idle_check)
        if self._pipes.get(pipe.name) is pipe:
            del self._pipes[pipe.name]
        now = self._clock.seconds()
        assert pipe.started_at is not None
        result = TransferResult(
            name=pipe.name, transfer_id=pipe.transfer_id, ok=ok, bytes=pipe.bytes,
            total_bytes=pipe.total_bytes, started_at=pipe.started_at, ended_at=now,
            receivers=pipe.n, reason=None if ok else reason)
        self._done(result)
        self._changed(pipe)

    # -- shutting down ------------------------------------------------------

    def start_draining(self) -> None:
        """Refuse new pipes from now on (503); running and waiting ones carry on,
        so a receiver whose sender already waits can still complete it."""
        self.draining = True

    def fail_all(self, reason: str = SHUTTING_DOWN) -> None:
        """End every pipe now: running ones as failed, waiting parties refused."""
        for pipe in list(self._pipes.values()):
            if pipe.state == STREAMING:
                self._abort(pipe, reason)
            else:
                self._fail_waiting_everyone(pipe, Refusal(503, reason + ".", "draining"))

    # -- telling ------------------------------------------------------------

    def _changed(self, pipe: Pipe) -> None:
        status = pipe.status()
        for observer in self._observers:
            try:
                observer.pipe_changed(status)
            except Exception:
                self.log.failure("observer {observer} failed", observer=observer)

    def _done(self, result: TransferResult) -> None:
        for observer in self._observers:
            try:
                observer.transfer_done(result)
            except Exception:
                self.log.failure("observer {observer} failed", observer=observer)

    @staticmethod
    def _sender(pipe: Pipe) -> ISender:
        assert pipe.sender is not None
        return ISender(pipe.sender.handle)

    @staticmethod
    def _cancel(call: IDelayedCall | None) -> None:
        if call is not None and call.active():
            call.cancel()
