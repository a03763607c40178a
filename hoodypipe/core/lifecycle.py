"""
One pipe's life, as a state machine: every transition is a row below.

::

    waiting --filled--> streaming --completed--> complete
       |                    |--failed/abort/shut_down/start_failed--> failed
       |--emptied/shut_down--> idle

A pipe is born waiting when its first party joins. While waiting, parties
join, leave and time out (each a row that stays in ``waiting``); the party
that makes it full feeds ``filled`` and it streams; the last party leaving
feeds ``emptied`` and its name is forgotten (``idle``). A streaming pipe
ends exactly once, whichever of the byte path (``completed``, ``failed``),
the idle timeout (``abort``) or the shutdown (``shut_down``) comes first:
``complete``, ``failed`` and ``idle`` have no way out, and every late input
there (the byte path reporting the end of a transfer that was aborted, a
party's socket closing after the end) is a row that does nothing.

``automat`` queues an input fed while another one is being handled and runs
it after, in the state the first one left. That is what makes an abort safe:
the pipe is ``failed`` (its result reported) before the byte path is told to
stop, and the byte path's own report of that end arrives in ``failed``,
where it is listed as ignored.

An input that has no row in the pipe's state (a join on an ended pipe, a
second ``filled``) raises ``automat.NoTransition``: the registry never feeds
one, and a test walks every row.
"""

from __future__ import annotations

import uuid
from typing import ClassVar, Protocol

import attrs
from automat import TypeMachineBuilder
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from hoodypipe.core.events import (
    COMPLETE,
    FAILED,
    IDLE,
    STREAMING,
    WAITING,
    PipeStatus,
    TransferResult,
)
from hoodypipe.core.outcomes import (
    IDLE_TIMEOUT,
    RECEIVER_CONNECTED,
    RECEIVER_DISCONNECTED,
    SENDER_GONE,
    START_FAILED,
    WAITED_OUT,
    News,
    Refused,
    Rule,
    SenderNews,
)
from hoodypipe.core.parties import IReceiver, ISender, ITransfer, Party, cancel
from hoodypipe.settings import Settings


class PipeLife(Protocol):
    """The inputs: everything that can happen to a pipe."""

    def sender_joined(self, party: Party, total_bytes: int | None) -> None: ...
    def receiver_joined(self, party: Party) -> None: ...
    def sender_left(self) -> None: ...
    def sender_waited_out(self) -> None: ...
    def receiver_left(self, party: Party) -> None: ...
    def receiver_waited_out(self, party: Party) -> None: ...
    def keepalive_due(self) -> None: ...
    def filled(self) -> None: ...
    def emptied(self) -> None: ...
    def start_failed(self) -> None: ...
    def receiver_dropped(self) -> None: ...
    def idle_check_due(self) -> None: ...
    def completed(self) -> None: ...
    def failed(self, reason: str | None) -> None: ...
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

    log: ClassVar[Logger] = Logger()

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
    life: PipeLife = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.life = _PIPE_LIFE(self)

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


_builder = TypeMachineBuilder(PipeLife, Pipe)
waiting = _builder.state(WAITING)
streaming = _builder.state(STREAMING)
complete = _builder.state(COMPLETE)
failed = _builder.state(FAILED)
idle = _builder.state(IDLE)


# -- waiting: parties come and go ----------------------------------------------


@waiting.upon(PipeLife.sender_joined).loop()
def _take_sender(life: PipeLife, pipe: Pipe, party: Party, total_bytes: int | None) -> None:
    pipe.sender = party
    pipe.total_bytes = total_bytes
    party.wait_timer = pipe.host.clock.callLater(party.wait, life.sender_waited_out)
    _tell(pipe, SenderNews(News.WAITING_FOR, pipe.n))
    if pipe.receivers:
        _tell(pipe, SenderNews(News.ALREADY_CONNECTED, len(pipe.receivers)))
    pipe.host.changed(pipe)
    if pipe.full:
        life.filled()
    else:
        _schedule_keepalive(life, pipe)


@waiting.upon(PipeLife.receiver_joined).loop()
def _take_receiver(life: PipeLife, pipe: Pipe, party: Party) -> None:
    pipe.receivers.append(party)
    party.wait_timer = pipe.host.clock.callLater(
        party.wait, life.receiver_waited_out, party)
    if pipe.sender is not None:
        _tell(pipe, RECEIVER_CONNECTED)
    pipe.host.changed(pipe)
    if pipe.full:
        life.filled()


@waiting.upon(PipeLife.sender_left).loop()
def _lose_sender(life: PipeLife, pipe: Pipe) -> None:
    assert pipe.sender is not None
    cancel(pipe.sender.wait_timer)
    _sender_failed_waiting(pipe, SENDER_GONE)
    _settle(life, pipe)


@waiting.upon(PipeLife.sender_waited_out).loop()
def _give_up_sender(life: PipeLife, pipe: Pipe) -> None:
    assert pipe.sender is not None
    ISender(pipe.sender.handle).refuse(Refused(Rule.NO_RECEIVERS))
    _sender_failed_waiting(pipe, WAITED_OUT)
    _settle(life, pipe)


@waiting.upon(PipeLife.receiver_left).loop()
def _lose_receiver(life: PipeLife, pipe: Pipe, party: Party) -> None:
    cancel(party.wait_timer)
    pipe.receivers.remove(party)
    if pipe.sender is not None:
        _tell(pipe, RECEIVER_DISCONNECTED)
    _settle(life, pipe)


@waiting.upon(PipeLife.receiver_waited_out).loop()
def _give_up_receiver(life: PipeLife, pipe: Pipe, party: Party) -> None:
    pipe.receivers.remove(party)
    rule = Rule.NO_RECEIVERS if pipe.sender is not None else Rule.NO_SENDER
    IReceiver(party.handle).refuse(Refused(rule))
    if pipe.sender is not None:
        _tell(pipe, RECEIVER_DISCONNECTED)
    _settle(life, pipe)


@waiting.upon(PipeLife.keepalive_due).loop()
def _keep_sender_alive(life: PipeLife, pipe: Pipe) -> None:
    pipe.keepalive = None
    _tell(pipe, SenderNews(News.STILL_WAITING, pipe.n - len(pipe.receivers)))
    _schedule_keepalive(life, pipe)


@waiting.upon(PipeLife.emptied).to(idle)
def _forget(life: PipeLife, pipe: Pipe) -> None:
    _free_name(pipe)


@waiting.upon(PipeLife.shut_down).to(idle)
def _refuse_everyone(life: PipeLife, pipe: Pipe, reason: str) -> None:
    refused = Refused(Rule.SHUT_DOWN, reason=reason)
    for party in pipe.receivers:
        cancel(party.wait_timer)
        IReceiver(party.handle).refuse(refused)
    pipe.receivers.clear()
    if pipe.sender is not None:
        cancel(pipe.sender.wait_timer)
        ISender(pipe.sender.handle).refuse(refused)
        _sender_failed_waiting(pipe, reason)
    _free_name(pipe)


# The byte path only reports on streaming pipes; nothing to do before.
waiting.upon(PipeLife.receiver_dropped).loop().returns(None)


def _settle(life: PipeLife, pipe: Pipe) -> None:
    """After a party went: the last one frees the name, else observers hear."""
    if pipe.empty:
        life.emptied()
    else:
        pipe.host.changed(pipe)


def _free_name(pipe: Pipe) -> None:
    pipe.state = IDLE
    pipe.host.forget(pipe)
    pipe.host.changed(pipe)


def _sender_failed_waiting(pipe: Pipe, reason: str) -> None:
    """The sender went before streaming: its transfer failed; receivers may
    stay and wait for the next sender, which starts a new transfer."""
    cancel(pipe.keepalive)
    now = pipe.host.clock.seconds()
    result = TransferResult(
        name=pipe.name, transfer_id=pipe.transfer_id, ok=False, bytes=0,
        total_bytes=pipe.total_bytes, started_at=pipe.created_at, ended_at=now,
        receivers=len(pipe.receivers), reason=reason)
    pipe.sender = None
    pipe.total_bytes = None
    pipe.transfer_id = new_transfer_id()
    pipe.created_at = now
    pipe.host.done(result)


def _schedule_keepalive(life: PipeLife, pipe: Pipe) -> None:
    pipe.keepalive = pipe.host.clock.callLater(
        pipe.host.settings.keepalive_interval, life.keepalive_due)


# -- streaming ---------------------------------------------------------------------


@waiting.upon(PipeLife.filled).to(streaming)
def _start(life: PipeLife, pipe: Pipe) -> None:
    assert pipe.sender is not None
    for party in [pipe.sender, *pipe.receivers]:
        cancel(party.wait_timer)
    cancel(pipe.keepalive)
    pipe.state = STREAMING
    pipe.started_at = pipe.idle_seen_at = pipe.host.clock.seconds()
    pipe.idle_seen_bytes = 0
    pipe.active_receivers = pipe.n
    _tell(pipe, SenderNews(News.STREAMING_TO, pipe.n))
    _schedule_idle_check(life, pipe)
    pipe.host.changed(pipe)
    try:
        pipe.transfer = pipe.host.start_transfer(pipe)
    except Exception:
        pipe.log.failure("starting the transfer on {name} failed", name=pipe.name)
        life.start_failed()


@streaming.upon(PipeLife.receiver_dropped).loop()
def _one_receiver_fewer(life: PipeLife, pipe: Pipe) -> None:
    pipe.active_receivers -= 1
    _tell(pipe, RECEIVER_DISCONNECTED)
    pipe.host.changed(pipe)


@streaming.upon(PipeLife.idle_check_due).loop()
def _check_idle(life: PipeLife, pipe: Pipe) -> None:
    pipe.idle_check = None
    now = pipe.host.clock.seconds()
    timeout = pipe.host.settings.idle_timeout
    if pipe.bytes != pipe.idle_seen_bytes:
        pipe.idle_seen_bytes = pipe.bytes
        pipe.idle_seen_at = now
    elif now - pipe.idle_seen_at >= timeout:
        pipe.log.info("pipe {name} idle for {seconds}s: ending it",
                      name=pipe.name, seconds=timeout)
        life.abort(IDLE_TIMEOUT)
        return
    _schedule_idle_check(life, pipe)


@streaming.upon(PipeLife.completed).to(complete)
def _complete(life: PipeLife, pipe: Pipe) -> None:
    _end(pipe, ok=True, reason=None)


@streaming.upon(PipeLife.failed).to(failed)
def _fail(life: PipeLife, pipe: Pipe, reason: str | None) -> None:
    _end(pipe, ok=False, reason=reason)


@streaming.upon(PipeLife.abort).to(failed)
def _abort(life: PipeLife, pipe: Pipe, reason: str) -> None:
    _end(pipe, ok=False, reason=reason)
    if pipe.transfer is not None:
        # Its own report of this end comes back as ``failed``: ignored there.
        ITransfer(pipe.transfer).abort(reason)
    else:  # aborted while its byte path was failing to start
        _refuse_unstarted(pipe)


streaming.upon(PipeLife.shut_down).to(failed)(_abort)


@streaming.upon(PipeLife.start_failed).to(failed)
def _fail_unstarted(life: PipeLife, pipe: Pipe) -> None:
    _refuse_unstarted(pipe)
    _end(pipe, ok=False, reason=START_FAILED)


# The byte path watches its own parties' sockets once streaming.
streaming.upon(PipeLife.sender_left).loop().returns(None)
streaming.upon(PipeLife.receiver_left).loop().returns(None)


def _end(pipe: Pipe, ok: bool, reason: str | None) -> None:
    pipe.state = COMPLETE if ok else FAILED
    cancel(pipe.idle_check)
    pipe.host.forget(pipe)
    assert pipe.started_at is not None
    pipe.host.done(TransferResult(
        name=pipe.name, transfer_id=pipe.transfer_id, ok=ok, bytes=pipe.bytes,
        total_bytes=pipe.total_bytes, started_at=pipe.started_at,
        ended_at=pipe.host.clock.seconds(), receivers=pipe.n,
        reason=None if ok else reason))
    pipe.host.changed(pipe)


def _refuse_unstarted(pipe: Pipe) -> None:
    refused = Refused(Rule.START_FAILED)
    for party in pipe.receivers:
        IReceiver(party.handle).refuse(refused)
    if pipe.sender is not None:
        ISender(pipe.sender.handle).refuse(refused)


def _schedule_idle_check(life: PipeLife, pipe: Pipe) -> None:
    step = max(pipe.host.settings.idle_timeout / 10, 0.05)
    pipe.idle_check = pipe.host.clock.callLater(step, life.idle_check_due)


def _tell(pipe: Pipe, news: SenderNews) -> None:
    assert pipe.sender is not None
    ISender(pipe.sender.handle).tell(news)


# -- ended: nothing leaves these states, and every late input is a no-op -------------


for _ended in (complete, failed, idle):
    _ended.upon(PipeLife.completed).loop().returns(None)
    _ended.upon(PipeLife.failed).loop().returns(None)
    _ended.upon(PipeLife.abort).loop().returns(None)
    _ended.upon(PipeLife.shut_down).loop().returns(None)
    _ended.upon(PipeLife.start_failed).loop().returns(None)
    _ended.upon(PipeLife.receiver_dropped).loop().returns(None)
    _ended.upon(PipeLife.sender_left).loop().returns(None)
    _ended.upon(PipeLife.receiver_left).loop().returns(None)


_PIPE_LIFE = _builder.build()
