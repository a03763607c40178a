"""
One pipe's life, as a state machine: every transition is a row.

The rows (state, input -> next state: what happens). A unit test checks
this table against the machine built below, row for row::

    waiting   sender_joined       -> waiting    it takes the slot; hears n and who is there
    waiting   receiver_joined     -> waiting    the sender hears of it
    waiting   sender_left         -> waiting    its transfer failed; receivers wait on
    waiting   sender_waited_out   -> waiting    told so; its transfer failed; receivers wait on
    waiting   receiver_left       -> waiting    the sender hears of it
    waiting   receiver_waited_out -> waiting    refused 408; the sender hears of it
    waiting   keepalive_due       -> waiting    "still waiting" to the sender
    waiting   receiver_dropped    -> waiting    nothing (no byte path yet)
    waiting   filled              -> streaming  timers off; the byte path starts
    waiting   emptied             -> idle       the name is free
    waiting   shut_down           -> idle       every party refused 503; the name is free
    streaming receiver_dropped    -> streaming  the sender hears of it
    streaming idle_check_due      -> streaming  no byte moved for idle_timeout: feeds abort
    streaming sender_left         -> streaming  nothing (the byte path watches its sockets)
    streaming receiver_left       -> streaming  nothing (likewise)
    streaming completed           -> complete   the result reported
    streaming failed              -> failed     the result reported
    streaming abort               -> failed     the result reported, then the byte path stopped
    streaming shut_down           -> failed     likewise
    streaming start_failed        -> failed     every party refused 500; the result reported

``complete``, ``failed`` and ``idle`` have no way out: every input of
``LATE`` is a row there that does nothing (the byte path reporting the end
of a transfer that was aborted, a socket closing after the end, a shutdown
reaching a pipe that just ended). So a transfer ends exactly once, whichever
of the byte path, the idle timeout and the shutdown comes first.

``automat`` queues an input fed while another one is being handled and runs
it after, in the state the first one left. A join that fills the pipe feeds
``filled`` that way, and an abort marks the pipe ``failed`` (its result
reported) before the byte path is told to stop, so the byte path's own
report of that end arrives in ``failed``.

Any other input (a join on an ended pipe, a second ``filled``, a timer that
should have been cancelled) raises ``automat.NoTransition``: it would be a
bug in the registry, never a client's doing.
"""

from __future__ import annotations

from automat import TypeMachineBuilder
from twisted.logger import Logger

from hoodypipe.core.events import COMPLETE, FAILED, IDLE, STREAMING, WAITING, TransferResult
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
from hoodypipe.core.pipe import Host, Pipe, PipeLife, new_transfer_id

log = Logger(namespace="hoodypipe.core.lifecycle")


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
    _tell(pipe, SenderNews(News.WAITING_FOR, pipe.n))
    if pipe.receivers:
        _tell(pipe, SenderNews(News.ALREADY_CONNECTED, len(pipe.receivers)))
    pipe.host.changed(pipe)
    if pipe.full:
        life.filled()  # no timer to wait with: it starts once this row is done
    else:
        party.wait_timer = pipe.host.clock.callLater(party.wait, life.sender_waited_out)
        _schedule_keepalive(life, pipe)


@waiting.upon(PipeLife.receiver_joined).loop()
def _take_receiver(life: PipeLife, pipe: Pipe, party: Party) -> None:
    pipe.receivers.append(party)
    if pipe.sender is not None:
        _tell(pipe, RECEIVER_CONNECTED)
    pipe.host.changed(pipe)
    if pipe.full:
        life.filled()
    else:
        party.wait_timer = pipe.host.clock.callLater(
            party.wait, life.receiver_waited_out, party)


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
        log.failure("starting the transfer on {name} failed", name=pipe.name)
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
        log.info("pipe {name} idle for {seconds}s: ending it",
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
        reason=None if ok else reason, sha256=pipe.sha256 if ok else None))
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


LATE = (
    PipeLife.completed, PipeLife.failed, PipeLife.abort, PipeLife.shut_down,
    PipeLife.start_failed, PipeLife.receiver_dropped, PipeLife.sender_left,
    PipeLife.receiver_left,
)
for _ended in (complete, failed, idle):
    for _late in LATE:
        _ended.upon(_late).loop().returns(None)


PIPE_LIFE = _builder.build()


def open_pipe(host: Host, name: str, n: int, created_at: float) -> Pipe:
    """A new pipe, waiting, with its own machine."""
    pipe = Pipe(host, name=name, n=n, created_at=created_at)
    pipe.life = PIPE_LIFE(pipe)
    return pipe
