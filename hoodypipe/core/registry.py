"""
The rendezvous rules: which party may join which pipe, and the caps.

Pure logic. Parties are anything providing ``ISender``/``IReceiver`` (the web
layer's adapters, or fakes in tests); time comes from an ``IReactorTime`` so
every timer is driven by ``Clock`` in the unit tests. Each pipe's life (its
states, timers and the one end of its transfer) is its state machine in
``lifecycle``; the registry decides who may join, feeds the machines, keeps
the counts the caps are checked against and tells the observers. The byte
path is started through ``start_transfer`` and reports back with
``receiver_left`` and ``transfer_ended``.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from hoodypipe.core.events import IDLE, STREAMING, ITransferObserver, PipeStatus, TransferResult
from hoodypipe.core.lifecycle import open_pipe
from hoodypipe.core.outcomes import (
    IDLE_TIMEOUT,
    SENDER_GONE,
    SHUTTING_DOWN,
    Refused,
    Rule,
)
from hoodypipe.core.parties import IReceiver, ISender, ITransfer, Party
from hoodypipe.core.pipe import Pipe
from hoodypipe.settings import Settings

__all__ = [
    "IDLE_TIMEOUT", "SENDER_GONE", "SHUTTING_DOWN", "IReceiver", "ISender",
    "ITransfer", "Pipe", "PipeRegistry", "StartTransfer",
]

StartTransfer = Callable[[Pipe], object]


class PipeRegistry:
    """Every live pipe by name, who may join it, and the counts of the caps."""

    log = Logger()

    def __init__(self, clock: IReactorTime, settings: Settings) -> None:
        self.clock = clock
        self.settings = settings
        self._pipes: dict[str, Pipe] = {}
        self._observers: list[ITransferObserver] = []
        self._start_transfer: StartTransfer | None = None
        self._active = 0
        self._parties = 0
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

    def party_count(self) -> int:
        """Senders and receivers held by waiting and streaming pipes."""
        return self._parties

    # -- joining ------------------------------------------------------------

    def join_sender(
        self, name: str, n: int, wait: float, sender: ISender,
        total_bytes: int | None,
    ) -> Pipe | Refused:
        """Register a sender, or say which rule refuses it (nothing registered)."""
        pipe = self._pipes.get(name)
        refused = self._admit(pipe, n, sender=True)
        if refused is not None:
            return refused
        pipe = pipe or self._open(name, n)
        pipe.life.sender_joined(Party(sender, wait), total_bytes)
        return pipe

    def join_receiver(
        self, name: str, n: int, wait: float, receiver: IReceiver,
    ) -> Pipe | Refused:
        """Register a receiver, or say which rule refuses it (nothing registered).
        A registered receiver is answered when streaming starts or it is given up."""
        pipe = self._pipes.get(name)
        refused = self._admit(pipe, n, sender=False)
        if refused is not None:
            return refused
        pipe = pipe or self._open(name, n)
        pipe.life.receiver_joined(Party(receiver, wait))
        return pipe

    def leave(self, pipe: Pipe, handle: object) -> None:
        """A party's connection went away (before, during or after streaming)."""
        if pipe.sender is not None and pipe.sender.handle is handle:
            pipe.life.sender_left()
            return
        for party in pipe.receivers:
            if party.handle is handle:
                pipe.life.receiver_left(party)
                return

    def _admit(self, pipe: Pipe | None, n: int, sender: bool) -> Refused | None:
        """Every rule a joining party must pass, in the order they are told."""
        if pipe is None:
            if self.draining:
                return Refused(Rule.DRAINING)
            return self._capacity(new_pipe=True, fills=False)
        if pipe.state == STREAMING:
            return Refused(Rule.IN_PROGRESS)
        if pipe.n != n:
            return Refused(Rule.N_MISMATCH, expected_n=pipe.n, got_n=n)
        if sender and pipe.sender is not None:
            return Refused(Rule.SENDER_PRESENT)
        if not sender and len(pipe.receivers) >= pipe.n:
            return Refused(Rule.RECEIVERS_FULL)
        fills = (sender or pipe.sender is not None) and (
            len(pipe.receivers) + (not sender) >= pipe.n)
        if fills and self._start_transfer is None:
            raise RuntimeError("no byte path was given to the registry")
        return self._capacity(new_pipe=False, fills=fills)

    def _capacity(self, new_pipe: bool, fills: bool) -> Refused | None:
        """The caps: a party is refused when the server is full, whatever the path."""
        s = self.settings
        if new_pipe and self.waiting_count() >= s.max_waiting:
            return Refused(Rule.MAX_WAITING)
        if (new_pipe or fills) and self._active >= s.max_active:
            return Refused(Rule.MAX_ACTIVE)
        if self._parties >= s.max_parties:
            return Refused(Rule.MAX_PARTIES)
        return None

    def _open(self, name: str, n: int) -> Pipe:
        pipe = open_pipe(self, name, n, self.clock.seconds())
        self._pipes[name] = pipe
        return pipe

    # -- the byte path's reports ---------------------------------------------

    def receiver_left(self, pipe: Pipe) -> None:
        """A receiver dropped mid-stream; the byte path carries on with the rest."""
        pipe.life.receiver_dropped()

    def transfer_ended(self, pipe: Pipe, ok: bool, reason: str | None) -> None:
        """The byte path finished (or failed). Only the first end of a
        transfer counts: the pipe's life ignores any later one."""
        if ok:
            pipe.life.completed()
        else:
            pipe.life.failed(reason)

    # -- shutting down ------------------------------------------------------

    def start_draining(self) -> None:
        """Refuse new pipes from now on (503); running and waiting ones carry on,
        so a receiver whose sender already waits can still complete it."""
        self.draining = True

    def fail_all(self, reason: str = SHUTTING_DOWN) -> None:
        """End every pipe now: running ones as failed, waiting parties refused."""
        for pipe in list(self._pipes.values()):
            pipe.life.shut_down(reason)

    # -- what the pipes' lives report (lifecycle.Host) ------------------------

    def start_transfer(self, pipe: Pipe) -> object:
        assert self._start_transfer is not None  # checked when the pipe filled
        return self._start_transfer(pipe)

    def changed(self, pipe: Pipe) -> None:
        self._count(pipe)
        status = pipe.status()
        for observer in self._observers:
            try:
                observer.pipe_changed(status)
            except Exception:
                self.log.failure("observer {observer} failed", observer=observer)

    def done(self, result: TransferResult) -> None:
        for observer in self._observers:
            try:
                observer.transfer_done(result)
            except Exception:
                self.log.failure("observer {observer} failed", observer=observer)

    def forget(self, pipe: Pipe) -> None:
        if self._pipes.get(pipe.name) is pipe:
            del self._pipes[pipe.name]
        self._count(pipe)

    def _count(self, pipe: Pipe) -> None:
        """Bring the caps' counts up to what ``pipe`` holds now."""
        parties = pipe.parties_held()
        self._parties += parties - pipe.counted_parties
        pipe.counted_parties = parties
        active = pipe.state == STREAMING
        self._active += active - pipe.counted_active
        pipe.counted_active = active
