"""A pipe's state machine: the table is the machine, every row is walked,
and a transfer ends exactly once however its endings race.

Each row is walked through the registry's public calls where that is how
the input arrives in the server (a join, a leave, a timer on the Clock, the
byte path's report); only the inputs that reach an ended pipe by re-entry
are fed to its machine directly. The machine's own trace says which rows
ran, so a row that a scenario misses fails here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
from zope.interface import implementer

from hoodypipe.core import lifecycle
from hoodypipe.core import registry as registry_module
from hoodypipe.core.events import ITransferObserver, PipeStatus, TransferResult
from hoodypipe.core.lifecycle import LATE, PIPE_LIFE
from hoodypipe.core.outcomes import IDLE_TIMEOUT, SENDER_GONE, SHUTTING_DOWN
from hoodypipe.core.parties import Party
from hoodypipe.core.pipe import Pipe
from hoodypipe.settings import Settings
from tests.kit.registry import FakeReceiver, FakeSender, FakeTransfer, World, world

Row = tuple[str, str, str]
ENDED = ("complete", "failed", "idle")


def machine_rows() -> set[Row]:
    automaton = PIPE_LIFE.__automat_automaton__
    return {(old.name, symbol, new.name) for old, symbol, new, _ in automaton.allTransitions()}


def documented_rows() -> set[Row]:
    assert lifecycle.__doc__ is not None
    rows: set[Row] = set()
    for line in lifecycle.__doc__.splitlines():
        match = re.fullmatch(r"    (\w+)\s+(\w+)\s+-> (\w+)\s+\S.*", line)
        if match:
            old, symbol, new = match.groups()
            rows.add((old, symbol, new))
    return rows


def late_rows() -> set[Row]:
    return {(state, late.__name__, state) for state in ENDED for late in LATE}


def test_the_table_in_the_docstring_is_the_machine() -> None:
    documented = documented_rows()
    assert len(documented) == 20
    assert documented | late_rows() == machine_rows()
    assert not documented & late_rows()


def test_nothing_leaves_an_ended_state() -> None:
    for old, _, new in machine_rows():
        if old in ENDED:
            assert new == old


# -- walking the rows ------------------------------------------------------------------


@attrs.define
class Walk:
    rows: list[Row] = attrs.Factory(list)
    pipes: list[Pipe] = attrs.Factory(list)


@pytest.fixture
def walk(monkeypatch: pytest.MonkeyPatch) -> Iterator[Walk]:
    """Trace every pipe the registry opens; afterwards check that each one's
    ``state`` mirrors its machine's state."""
    traced = Walk()
    real_open = registry_module.open_pipe

    def open_traced(*args: Any, **kwargs: Any) -> Pipe:
        pipe = real_open(*args, **kwargs)
        transitioner: Any = getattr(pipe.life, "__automat_transitioner__")  # noqa: B009

        def trace(old: Any, symbol: str, new: Any) -> None:
            traced.rows.append((old.name, symbol, new.name))

        transitioner.setTrace(trace)
        traced.pipes.append(pipe)
        return pipe

    monkeypatch.setattr(registry_module, "open_pipe", open_traced)
    yield traced
    for pipe in traced.pipes:
        machine: Any = getattr(pipe.life, "__automat_transitioner__")  # noqa: B009
        assert machine._state.name == pipe.state


def streaming(w: World, n: int = 1) -> tuple[FakeSender, list[FakeReceiver], Pipe]:
    sender, pipe = w.sender(n=n)
    receivers = [w.receiver(n=n)[0] for _ in range(n)]
    assert pipe.state == "streaming"
    return sender, receivers, pipe


def _sender_joined(w: World) -> None:
    w.receiver(n=2)
    sender, _ = w.sender(n=2)
    assert sender.lines == ["[INFO] Waiting for 2 receiver(s) to connect...",
                            "[INFO] 1 receiver(s) already connected."]


def _receiver_joined(w: World) -> None:
    sender, _ = w.sender(n=2)
    w.receiver(n=2)
    assert sender.lines[-1] == "[INFO] A receiver connected."


def _sender_left(w: World) -> None:
    sender, pipe = w.sender(n=2)
    w.receiver(n=2)
    w.registry.leave(pipe, sender)
    assert [d.reason for d in w.observer.done] == [SENDER_GONE]
    assert w.registry.status("p").receivers == 1


def _sender_waited_out(w: World) -> None:
    sender, _ = w.sender(wait=5)
    w.clock.advance(5)
    assert sender.ended == ["Timed out waiting for receivers."]


def _receiver_left(w: World) -> None:
    sender, pipe = w.sender(n=2)
    receiver, _ = w.receiver(n=2)
    w.registry.leave(pipe, receiver)
    assert sender.lines[-1] == "[INFO] A receiver disconnected."


def _receiver_waited_out(w: World) -> None:
    receiver, _ = w.receiver(n=2, wait=5)
    w.receiver(n=2, wait=50)
    w.clock.advance(5)
    assert receiver.refusals == [(408, "Timed out waiting for sender.", "wait_timeout")]


def _keepalive_due(w: World) -> None:
    sender, _ = w.sender()
    w.clock.advance(w.registry.settings.keepalive_interval)
    assert sender.lines[-1] == "[INFO] Still waiting for 1 receiver(s)..."


def _dropped_while_waiting(w: World) -> None:
    sender, pipe = w.sender(n=2)
    w.registry.receiver_left(pipe)
    assert sender.lines == ["[INFO] Waiting for 2 receiver(s) to connect..."]


def _filled(w: World) -> None:
    _, _, pipe = streaming(w)
    assert w.starter.pipes == [pipe]


def _emptied(w: World) -> None:
    receiver, pipe = w.receiver()
    w.registry.leave(pipe, receiver)
    assert w.idle()


def _shut_down_waiting(w: World) -> None:
    receiver, _ = w.receiver()
    w.registry.fail_all()
    assert receiver.refusals == [(503, "Server shutting down.", "draining")]


def _dropped_while_streaming(w: World) -> None:
    _, _, pipe = streaming(w, n=2)
    w.registry.receiver_left(pipe)
    assert w.registry.status("p").receivers == 1


def _idle_check_due(w: World) -> None:
    _, _, pipe = streaming(w)
    pipe.bytes = 1
    w.clock.advance(w.registry.settings.idle_timeout / 10)
    assert pipe.idle_seen_bytes == 1


def _sender_left_while_streaming(w: World) -> None:
    sender, _, pipe = streaming(w)
    w.registry.leave(pipe, sender)
    assert pipe.state == "streaming" and w.observer.done == []


def _receiver_left_while_streaming(w: World) -> None:
    _, [receiver], pipe = streaming(w)
    w.registry.leave(pipe, receiver)
    assert w.registry.status("p").receivers == 1


def _completed(w: World) -> None:
    _, _, pipe = streaming(w)
    w.registry.transfer_ended(pipe, ok=True, reason=None)
    assert [d.ok for d in w.observer.done] == [True]


def _failed(w: World) -> None:
    _, _, pipe = streaming(w)
    w.registry.transfer_ended(pipe, ok=False, reason=SENDER_GONE)
    assert [d.reason for d in w.observer.done] == [SENDER_GONE]


def _aborted(w: World) -> None:
    streaming(w)
    w.clock.pump([w.registry.settings.idle_timeout / 10] * 11)
    assert w.starter.transfers[0].aborts == [IDLE_TIMEOUT]


def _shut_down_streaming(w: World) -> None:
    streaming(w)
    w.registry.fail_all()
    assert w.starter.transfers[0].aborts == [SHUTTING_DOWN]


def _start_failed(w: World) -> None:
    def broken(pipe: Pipe) -> object:
        raise RuntimeError("bug in the byte path")

    w.registry.set_transfer_starter(broken)
    receiver, _ = w.receiver()
    w.sender()
    assert receiver.refusals == [(500, "Internal server error.", "internal")]


SCENARIOS: dict[Row, Callable[[World], None]] = {
    ("waiting", "sender_joined", "waiting"): _sender_joined,
    ("waiting", "receiver_joined", "waiting"): _receiver_joined,
    ("waiting", "sender_left", "waiting"): _sender_left,
    ("waiting", "sender_waited_out", "waiting"): _sender_waited_out,
    ("waiting", "receiver_left", "waiting"): _receiver_left,
    ("waiting", "receiver_waited_out", "waiting"): _receiver_waited_out,
    ("waiting", "keepalive_due", "waiting"): _keepalive_due,
    ("waiting", "receiver_dropped", "waiting"): _dropped_while_waiting,
    ("waiting", "filled", "streaming"): _filled,
    ("waiting", "emptied", "idle"): _emptied,
    ("waiting", "shut_down", "idle"): _shut_down_waiting,
    ("streaming", "receiver_dropped", "streaming"): _dropped_while_streaming,
    ("streaming", "idle_check_due", "streaming"): _idle_check_due,
    ("streaming", "sender_left", "streaming"): _sender_left_while_streaming,
    ("streaming", "receiver_left", "streaming"): _receiver_left_while_streaming,
    ("streaming", "completed", "complete"): _completed,
    ("streaming", "failed", "failed"): _failed,
    ("streaming", "abort", "failed"): _aborted,
    ("streaming", "shut_down", "failed"): _shut_down_streaming,
    ("streaming", "start_failed", "failed"): _start_failed,
}


def test_every_row_has_a_walk() -> None:
    assert set(SCENARIOS) | late_rows() == machine_rows()


@pytest.mark.parametrize("row", sorted(SCENARIOS), ids=" ".join)
def test_each_row(row: Row, walk: Walk) -> None:
    w = world(Settings(idle_timeout=100, keepalive_interval=30))
    SCENARIOS[row](w)
    assert row in walk.rows
    assert w.registry.party_count() == sum(
        p.parties_held() for p in walk.pipes if w.registry.get(p.name) is p)


def _into(w: World, state: str) -> tuple[Pipe, FakeSender | None, FakeReceiver]:
    if state == "idle":
        receiver, pipe = w.receiver()
        w.registry.leave(pipe, receiver)
        return pipe, None, receiver
    sender, [receiver], pipe = streaming(w)
    w.registry.transfer_ended(pipe, ok=state == "complete", reason="broken")
    return pipe, sender, receiver


LATE_ARGS: dict[str, Callable[[Pipe], tuple[object, ...]]] = {
    "failed": lambda pipe: ("late",),
    "abort": lambda pipe: ("late",),
    "shut_down": lambda pipe: ("late",),
    "receiver_left": lambda pipe: (Party(FakeReceiver(), 1.0),),
}


@pytest.mark.parametrize("late", [f.__name__ for f in LATE])
@pytest.mark.parametrize("state", ENDED)
def test_late_inputs_on_an_ended_pipe_change_nothing(state: str, late: str, walk: Walk) -> None:
    w = world()
    pipe, sender, receiver = _into(w, state)
    seen = (list(w.observer.changes), list(w.observer.done), pipe.state)
    answered = (sender and (list(sender.lines), list(sender.ended)), list(receiver.refusals))
    args = LATE_ARGS.get(late, lambda pipe: ())(pipe)
    getattr(pipe.life, late)(*args)
    assert (state, late, state) in walk.rows
    assert (list(w.observer.changes), list(w.observer.done), pipe.state) == seen
    assert (sender and (list(sender.lines), list(sender.ended)),
            list(receiver.refusals)) == answered
    assert w.registry.party_count() == 0 and w.registry.active_count() == 0
    assert w.clock.getDelayedCalls() == []
    assert all(t.aborts == [] for t in w.starter.transfers)


# -- a transfer ends once ----------------------------------------------------------


@implementer(ITransferObserver)
class Meddler:
    """An observer that does something to the registry at one moment."""

    def __init__(self, when: Callable[[PipeStatus | TransferResult], bool],
                 then: Callable[[], None]) -> None:
        self.when = when
        self.then = then

    def pipe_changed(self, status: PipeStatus) -> None:
        if self.when(status):
            self.then()

    def transfer_done(self, result: TransferResult) -> None:
        if self.when(result):
            self.then()


def one_end(w: World) -> TransferResult:
    """Exactly one result per transfer, and nothing held afterwards."""
    [result] = w.observer.done
    assert w.registry.active_count() == 0 and w.registry.party_count() == 0
    assert w.idle()
    assert w.clock.getDelayedCalls() == []
    return result


@pytest.mark.parametrize("first, then", [
    ((True, None), (False, SENDER_GONE)),
    ((False, SENDER_GONE), (True, None)),
    ((False, "Broken body"), (False, SENDER_GONE)),
])
def test_the_byte_path_ending_twice_is_one_end(
    first: tuple[bool, str | None], then: tuple[bool, str | None]
) -> None:
    w = world()
    _, _, pipe = streaming(w)
    w.registry.transfer_ended(pipe, *first)
    w.registry.transfer_ended(pipe, *then)
    w.registry.receiver_left(pipe)
    assert (one_end(w).ok, one_end(w).reason) == first
    assert pipe.state == ("complete" if first[0] else "failed")


def test_the_byte_path_reporting_from_inside_the_abort_is_one_end() -> None:
    """The real Relay reports its end from inside ``abort``; here it even
    claims success, as a body finishing in the same turn would."""
    w = world(Settings(idle_timeout=100))
    w.starter.reports = True
    _, _, pipe = streaming(w)
    transfer = w.starter.transfers[0]
    transfer._on_abort = lambda reason: (
        w.registry.transfer_ended(pipe, ok=False, reason=reason),
        w.registry.transfer_ended(pipe, ok=True, reason=None))
    w.clock.pump([10.0] * 11)
    assert transfer.aborts == [IDLE_TIMEOUT]
    result = one_end(w)
    assert (result.ok, result.reason) == (False, IDLE_TIMEOUT)


@pytest.mark.parametrize("moment", ["done", "changed"])
def test_an_abort_during_the_end_is_ignored(moment: str) -> None:
    w = world()
    _, _, pipe = streaming(w)

    def when(seen: PipeStatus | TransferResult) -> bool:
        if moment == "done":
            return isinstance(seen, TransferResult)
        return isinstance(seen, PipeStatus) and seen.state == "complete"

    def meddle() -> None:
        pipe.life.abort(IDLE_TIMEOUT)
        pipe.life.shut_down("late")

    w.registry.add_observer(Meddler(when, meddle))
    w.registry.transfer_ended(pipe, ok=True, reason=None)
    assert one_end(w).ok
    assert w.starter.transfers[0].aborts == []


@pytest.mark.parametrize("sender_first", [True, False])
def test_idle_timeout_racing_the_sender_loss(sender_first: bool) -> None:
    """Both fall due at the same instant (t=100, the check that finds the
    pipe idle); the Clock runs the one scheduled first, which is the end."""
    w = world(Settings(idle_timeout=100))
    w.starter.reports = True
    _, _, pipe = streaming(w)

    def sender_lost() -> None:
        w.registry.transfer_ended(pipe, ok=False, reason=SENDER_GONE)

    if sender_first:
        w.clock.callLater(100, sender_lost)  # before the check due at 100 exists
    else:
        w.clock.pump([5.0] * 19)  # t=95: the check due at 100 was scheduled at 90
        w.clock.callLater(5, sender_lost)
    w.clock.pump([5.0] * 30)
    result = one_end(w)
    assert result.ended_at == 100
    assert result.reason == (SENDER_GONE if sender_first else IDLE_TIMEOUT)
    assert w.starter.transfers[0].aborts == ([] if sender_first else [IDLE_TIMEOUT])


def test_a_shutdown_while_the_transfer_starts_reaches_the_started_byte_path() -> None:
    w = world()
    w.starter.reports = True
    w.registry.add_observer(Meddler(
        lambda seen: isinstance(seen, PipeStatus) and seen.state == "streaming",
        w.registry.fail_all))
    sender, pipe = w.sender()
    receiver, _ = w.receiver()
    assert pipe.transfer is w.starter.transfers[0]
    assert w.starter.transfers[0].aborts == [SHUTTING_DOWN]
    assert one_end(w).reason == SHUTTING_DOWN
    assert receiver.refusals == [] and sender.ended == []  # the byte path answers them


def test_a_byte_path_that_ends_while_it_starts_is_one_end() -> None:
    """A sender's whole body may be there before its receivers: the byte
    path can finish inside ``start`` itself, and may still fail after."""
    w = world()

    def start(pipe: Pipe) -> object:
        w.registry.transfer_ended(pipe, ok=True, reason=None)
        raise RuntimeError("and then a bug")

    w.registry.set_transfer_starter(start)
    receiver, _ = w.receiver()
    sender, _ = w.sender()
    assert one_end(w).ok
    assert receiver.refusals == [] and sender.ended == []


def test_a_shutdown_while_the_byte_path_fails_to_start_answers_each_party_once() -> None:
    w = world()

    def broken(pipe: Pipe) -> object:
        raise RuntimeError("bug in the byte path")

    w.registry.set_transfer_starter(broken)
    w.registry.add_observer(Meddler(
        lambda seen: isinstance(seen, PipeStatus) and seen.state == "streaming",
        w.registry.fail_all))
    first, _ = w.receiver(n=2)
    second, _ = w.receiver(n=2)
    sender, _ = w.sender(n=2)
    assert first.refusals == second.refusals == [(500, "Internal server error.", "internal")]
    assert sender.ended == ["Internal server error."]
    assert one_end(w).reason == SHUTTING_DOWN


def test_a_late_transfer_of_an_old_pipe_never_aborts() -> None:
    w = world()
    _, _, old = streaming(w)
    w.registry.transfer_ended(old, ok=True, reason=None)
    streaming(w)
    old.life.abort(IDLE_TIMEOUT)
    assert [t.aborts for t in w.starter.transfers] == [[], []]
    assert w.registry.active_count() == 1
    assert isinstance(w.starter.transfers[1], FakeTransfer)
