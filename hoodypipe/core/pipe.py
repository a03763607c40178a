"""
A pipe: one name's current transfer, its parties and its counters.

What can happen to a pipe is the ``PipeLife`` protocol, the inputs of its
state machine (``lifecycle``); what a pipe needs from its registry is
``Host``. The byte path adds to ``bytes``; everything else here is changed
only by the machine's transitions.
"""

from __future__ import annotations

import uuid
from typing import Protocol

import attrs
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from hoodypipe.core.events import STREAMING, WAITING, PipeStatus, TransferResult
from hoodypipe.core.parties import Party
from hoodypipe.settings import Settings


class PipeLife(Protocol):
    """The inputs: everything that can happen to a pipe, and who says so."""

    # The registry, once the party passed its rules:
    def sender_joined(self, party: Party, total_bytes: int | None) -> None: ...
    def receiver_joined(self, party: Party) -> None: ...
    # The web layer: a party's connection closed.
    def sender_left(self) -> None: ...
    def receiver_left(self, party: Party) -> None: ...
    # The pipe's own timers:
    def sender_waited_out(self) -> None: ...
    def receiver_waited_out(self, party: Party) -> None: ...
    def keepalive_due(self) -> None: ...
    def idle_check_due(self) -> None: ...
    # The pipe's own transitions, when a join fills it or a leave empties it:
    def filled(self) -> None: ...
    def emptied(self) -> None: ...
    # The byte path:
    def start_failed(self) -> None: ...
    def receiver_dropped(self) -> None: ...
    def completed(self) -> None: ...
    def failed(self, reason: str | None) -> None: ...
    # The idle check, and the registry's fail_all:
    def abort(self, reason: str) -> None: ...
    def shut_down(self, reason: str) -> None: ...


class Host(Protocol):
    """What a pipe's life needs from its registry."""

    clock: IReactorTime
    settings: Settings

    def start_transfer(self, pipe: Pipe) -> object:
        """Start the byte path of a full pipe; returns its ``ITransfer``."""

    def changed(self, pipe: Pipe) -> None:
        """Count what ``pipe`` holds now and tell the observers."""

    def done(self, result: TransferResult) -> None:
        """Tell the observers how a transfer ended."""

    def forget(self, pipe: Pipe) -> None:
        """Free the name: ``pipe`` holds nothing any more."""


def new_transfer_id() -> str:
    return uuid.uuid4().hex


@attrs.define(eq=False)
class Pipe:
    """One name's current transfer. ``bytes`` is the byte path's counter.

    ``state`` mirrors the machine's state for readers (status, tests); only
    the transitions below set it. ``counted_*`` is what the registry last
    counted for this pipe against its caps.
    """

    host: Host
    name: str
    n: int
    created_at: float
    transfer_id: str = attrs.Factory(new_transfer_id)
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
    counted_parties: int = 0
    counted_active: bool = False
    sha256: str | None = None  # the payload's digest, set by a ?sha256 byte path
    #: Its state machine; ``lifecycle.open_pipe`` gives every pipe its own.
    life: PipeLife = attrs.field(init=False)

    @property
    def full(self) -> bool:
        return self.sender is not None and len(self.receivers) >= self.n

    @property
    def empty(self) -> bool:
        return self.sender is None and not self.receivers

    def parties_held(self) -> int:
        """Sockets this pipe holds as parties (spectators are not parties)."""
        if self.state == WAITING:
            return (self.sender is not None) + len(self.receivers)
        if self.state == STREAMING:
            return 1 + self.active_receivers
        return 0

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
            started_at=self.started_at,
            transfer_id=self.transfer_id,
        )
