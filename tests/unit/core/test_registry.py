"""PipeRegistry, the rendezvous rules, driven by a Clock and fake parties.

Every timer of the registry (party waits, the sender keep-alive, the idle
check) runs on the ``Clock`` here, so each test says exactly when a thing
happens and checks that it does not happen a moment earlier.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs
from zope.interface import implementer

from hoodypipe.core.errors import Refusal
from hoodypipe.core.events import ITransferObserver, PipeStatus, TransferResult
from hoodypipe.core.registry import (
    IDLE_TIMEOUT,
    SENDER_GONE,
    SHUTTING_DOWN,
    Pipe,
    PipeRegistry,
)
from hoodypipe.settings import Settings
from tests.kit.observers import Recorder
from tests.kit.registry import (
    FakeReceiver,
    FakeSender,
    Starter,
    World,
    joined,
    refused,
    world,
)

WAITING_1 = "[INFO] Waiting for 1 receiver(s) to connect..."
STREAMING_1 = "[INFO] Streaming to 1 receiver(s)..."
CONNECTED = "[INFO] A receiver connected."
DISCONNECTED = "[INFO] A receiver disconnected."
SENDER_TIMEOUT = "Timed out waiting for receivers."


@implementer(ITransferObserver)
class Exploding:
    def __init__(self) -> None:
        self.calls = 0

    def pipe_changed(self, status: PipeStatus) -> None:
        self.calls += 1
        raise RuntimeError("observer bug")

    def transfer_done(self, result: TransferResult) -> None:
        self.calls += 1
        raise RuntimeError("observer bug")


# -- joining and starting -----------------------------------------------------


def test_sender_first_then_receiver_starts_the_transfer() -> None:
    w = world()
    sender, pipe = w.sender()
    assert sender.lines == [WAITING_1]
    assert w.starter.transfers == []
    status = w.registry.status("p")
    assert (status.state, status.has_sender, status.receivers,
            status.total_receivers) == ("waiting", True, 0, 1)
    assert w.registry.waiting_count() == 1
    assert w.registry.active_count() == 0

    receiver, same = w.receiver()
    assert same is pipe
    assert sender.lines == [WAITING_1, CONNECTED, STREAMING_1]
    assert w.starter.pipes == [pipe]
    assert pipe.transfer is w.starter.transfers[0]
    assert [p.handle for p in pipe.receivers] == [receiver]
    assert pipe.state == "streaming"
    assert receiver.refusals == []
    assert sender.ended == []
    status = w.registry.status("p")
    assert (status.state, status.has_sender, status.receivers) == ("streaming", True, 1)
    assert w.registry.active_count() == 1
    assert w.registry.waiting_count() == 0


def test_receiver_first_then_sender_starts_the_transfer() -> None:
    w = world()
    receiver, pipe = w.receiver()
    status = w.registry.status("p")
    assert (status.state, status.has_sender, status.receivers) == ("waiting", False, 1)
    assert w.starter.transfers == []

    sender, same = w.sender(total=1234)
    assert same is pipe
    assert sender.lines == [
        WAITING_1,
        "[INFO] 1 receiver(s) already connected.",
        STREAMING_1,
    ]
    assert w.starter.pipes == [pipe]
    assert pipe.total_bytes == 1234
    assert w.registry.status("p").total_bytes == 1234
    assert receiver.refusals == []


def test_three_receivers_start_only_when_all_three_are_there() -> None:
    w = world()
    sender, pipe = w.sender(n=3)
    first, _ = w.receiver(n=3)
    second, _ = w.receiver(n=3)
    assert w.starter.transfers == []
    assert pipe.state == "waiting"
    assert w.registry.status("p").receivers == 2
    third, _ = w.receiver(n=3)
    assert w.starter.pipes == [pipe]
    assert [p.handle for p in pipe.receivers] == [first, second, third]
    assert sender.lines == [
        "[INFO] Waiting for 3 receiver(s) to connect...",
        CONNECTED, CONNECTED, CONNECTED,
        "[INFO] Streaming to 3 receiver(s)...",
    ]
    status = w.registry.status("p")
    assert (status.state, status.receivers, status.total_receivers) == (
        "streaming", 3, 3)


def test_sender_last_of_three_hears_how_many_are_already_there() -> None:
    w = world()
    w.receiver(n=3)
    w.receiver(n=3)
    sender, pipe = w.sender(n=3)
    assert sender.lines == [
        "[INFO] Waiting for 3 receiver(s) to connect...",
        "[INFO] 2 receiver(s) already connected.",
    ]
    assert w.starter.transfers == []
    w.receiver(n=3)
    assert sender.lines[-1] == "[INFO] Streaming to 3 receiver(s)..."
    assert w.starter.pipes == [pipe]


def test_starting_cancels_every_wait_timer() -> None:
    w = world(Settings(keepalive_interval=30, idle_timeout=100))
    w.sender(n=2, wait=10)
    w.receiver(n=2, wait=20)
    w.receiver(n=2, wait=30)
    # Only the idle check is left; it is the registry's one running timer.
    calls = w.clock.getDelayedCalls()
    assert len(calls) == 1
    assert calls[0].getTime() == pytest.approx(10.0)  # idle_timeout / 10


def test_names_are_separate_pipes() -> None:
    w = world()
    a, pipe_a = w.sender("a")
    b, pipe_b = w.sender("A")
    assert pipe_a is not pipe_b
    assert w.registry.waiting_count() == 2
    w.receiver("a")
    assert w.starter.pipes == [pipe_a]
    assert b.lines == [WAITING_1]
    assert w.registry.status("A").state == "waiting"


# -- keep-alive ---------------------------------------------------------------


def test_keepalive_lines_while_the_sender_waits_and_none_after_streaming() -> None:
    w = world(Settings(keepalive_interval=30))
    sender, _ = w.sender(n=2, wait=3600)
    w.clock.advance(29.99)
    assert sender.lines == ["[INFO] Waiting for 2 receiver(s) to connect..."]
    w.clock.advance(0.01)
    assert sender.lines[1:] == ["[INFO] Still waiting for 2 receiver(s)..."]
    w.clock.advance(30)
    assert sender.lines[1:] == ["[INFO] Still waiting for 2 receiver(s)..."] * 2
    w.receiver(n=2, wait=3600)
    w.clock.advance(30)
    assert sender.lines[3:] == [CONNECTED, "[INFO] Still waiting for 1 receiver(s)..."]
    w.receiver(n=2, wait=3600)
    assert sender.lines[-1] == "[INFO] Streaming to 2 receiver(s)..."
    before = list(sender.lines)
    for _ in range(20):
        w.clock.advance(29)
        w.starter.transfers[0].pipe.bytes += 1  # keep the idle check quiet
    assert sender.lines == before


def test_keepalive_starts_again_for_a_new_sender_after_one_left() -> None:
    w = world(Settings(keepalive_interval=30))
    first, pipe = w.sender(n=2)
    w.receiver(n=2)
    w.clock.advance(10)
    w.registry.leave(pipe, first)
    w.clock.advance(100)
    assert first.lines == ["[INFO] Waiting for 2 receiver(s) to connect...", CONNECTED]
    second, _ = w.sender(n=2)
    w.clock.advance(30)
    assert second.lines == [
        "[INFO] Waiting for 2 receiver(s) to connect...",
        "[INFO] 1 receiver(s) already connected.",
        "[INFO] Still waiting for 1 receiver(s)...",
    ]


def test_no_keepalive_when_the_sender_starts_the_transfer() -> None:
    w = world(Settings(keepalive_interval=30, idle_timeout=10_000))
    w.receiver()
    sender, pipe = w.sender()
    assert pipe.keepalive is None
    w.clock.advance(300)
    assert sender.lines[-1] == STREAMING_1
    assert len(sender.lines) == 3


# -- wait timeouts ------------------------------------------------------------


def test_sender_wait_timeout_ends_the_sender_and_reports_one_failed_transfer() -> None:
    w = world(Settings(keepalive_interval=30))
    w.clock.advance(5)
    sender, pipe = w.sender(n=2, wait=10, total=99)
    failed_id = pipe.transfer_id
    receiver, _ = w.receiver(n=2, wait=100)
    w.clock.advance(9.999)
    assert sender.ended == []
    assert w.observer.done == []
    w.clock.advance(0.001)
    assert sender.ended == [SENDER_TIMEOUT]
    assert w.observer.done == [TransferResult(
        name="p", transfer_id=failed_id, ok=False, bytes=0, total_bytes=99,
        started_at=5.0, ended_at=15.0, receivers=1,
        reason="Timed out waiting for receivers")]
    # The receiver already there keeps waiting, on the same pipe.
    assert receiver.refusals == []
    status = w.registry.status("p")
    assert (status.state, status.has_sender, status.receivers) == ("waiting", False, 1)
    assert status.total_bytes is None
    assert status.transfer_id != failed_id
    w.clock.advance(60)  # no keep-alive for a sender that is gone
    assert sender.lines == ["[INFO] Waiting for 2 receiver(s) to connect...", CONNECTED]
    assert len(w.observer.done) == 1
    # A new sender takes the path over and the transfer can still happen.
    again, same = w.sender(n=2, wait=100)
    assert same is pipe
    w.receiver(n=2)
    assert w.starter.pipes == [pipe]
    assert again.lines[-1] == "[INFO] Streaming to 2 receiver(s)..."


def test_sender_alone_timing_out_forgets_the_name() -> None:
    w = world()
    sender, _ = w.sender(wait=7)
    w.clock.advance(7)
    assert sender.ended == [SENDER_TIMEOUT]
    assert [(d.ok, d.reason, d.receivers) for d in w.observer.done] == [
        (False, "Timed out waiting for receivers", 0)]
    assert w.idle()
    assert w.registry.waiting_count() == 0
    assert w.clock.getDelayedCalls() == []


def test_receiver_wait_timeout_without_sender_refuses_408_others_keep_waiting() -> None:
    w = world()
    early, _ = w.receiver(n=2, wait=5)
    late, _ = w.receiver(n=2, wait=50)
    w.clock.advance(4.999)
    assert early.refusals == []
    w.clock.advance(0.001)
    assert early.refusals == [(408, "Timed out waiting for sender.", "wait_timeout")]
    assert late.refusals == []
    assert w.registry.status("p").receivers == 1
    w.clock.advance(45)
    assert late.refusals == [(408, "Timed out waiting for sender.", "wait_timeout")]
    assert w.idle()
    assert w.registry.waiting_count() == 0
    assert w.observer.done == []  # no sender, no transfer
    assert w.clock.getDelayedCalls() == []


def test_receiver_wait_timeout_with_sender_waits_for_receivers() -> None:
    w = world(Settings(keepalive_interval=1000))
    sender, _ = w.sender(n=2, wait=100)
    first, _ = w.receiver(n=2, wait=5)
    w.clock.advance(5)
    assert first.refusals == [(408, "Timed out waiting for receivers.", "wait_timeout")]
    assert sender.lines[-1] == DISCONNECTED
    assert sender.ended == []
    status = w.registry.status("p")
    assert (status.state, status.has_sender, status.receivers) == ("waiting", True, 0)
    assert w.observer.done == []


def test_receivers_each_keep_their_own_wait() -> None:
    w = world(Settings(keepalive_interval=1000))
    sender, _ = w.sender(n=3, wait=100)
    a, _ = w.receiver(n=3, wait=10)
    b, _ = w.receiver(n=3, wait=20)
    w.clock.advance(10)
    assert a.refusals and not b.refusals
    c, _ = w.receiver(n=3, wait=20)
    w.clock.advance(10)
    assert b.refusals and not c.refusals
    assert w.registry.status("p").receivers == 1
    assert sender.lines.count(DISCONNECTED) == 2


# -- refusals -----------------------------------------------------------------


def test_second_sender_is_refused_and_the_first_is_untouched() -> None:
    w = world()
    first, pipe = w.sender()
    assert refused(lambda: w.sender()) == (
        400, "Another sender is already connected on this path.", "busy")
    assert pipe.sender is not None and pipe.sender.handle is first
    w.receiver()
    assert w.starter.pipes == [pipe]
    assert first.lines == [WAITING_1, CONNECTED, STREAMING_1]


def test_receiver_beyond_n_is_refused() -> None:
    w = world()
    w.receiver(n=2)
    w.receiver(n=2)
    assert refused(lambda: w.receiver(n=2)) == (
        400, "The number of receivers has reached its limit.", "busy")
    assert w.registry.status("p").receivers == 2


@pytest.mark.parametrize("first_is_sender", [True, False])
@pytest.mark.parametrize("second_is_sender", [True, False])
def test_n_mismatch_is_refused(first_is_sender: bool, second_is_sender: bool) -> None:
    w = world()
    if first_is_sender:
        w.sender(n=2)
    else:
        w.receiver(n=2)
    join = (lambda: w.sender(n=3)) if second_is_sender else (lambda: w.receiver(n=3))
    assert refused(join) == (
        400, "Number of receivers mismatch: this path expects n=2, got n=3.",
        "mismatch")
    status = w.registry.status("p")
    assert (status.has_sender, status.receivers, status.total_receivers) == (
        first_is_sender, 0 if first_is_sender else 1, 2)


@pytest.mark.parametrize("who", ["sender", "receiver"])
def test_anyone_on_a_streaming_path_is_refused(who: str) -> None:
    w = world()
    w.sender()
    w.receiver()
    join = w.sender if who == "sender" else w.receiver
    assert refused(join) == (400, "A transfer is already in progress on this path.",
                             "busy")
    assert w.registry.status("p").receivers == 1
    assert w.registry.active_count() == 1


def test_refused_joins_register_nothing() -> None:
    w = world()
    w.sender("x", n=2)
    refused(lambda: w.receiver("x", n=1))
    refused(lambda: w.sender("x", n=2))
    assert w.registry.status("x").receivers == 0
    # Only the first sender's wait and its keep-alive are scheduled.
    assert sorted(c.getTime() for c in w.clock.getDelayedCalls()) == [30.0, 300.0]


# -- caps ---------------------------------------------------------------------


def test_max_waiting_refuses_new_names_with_429() -> None:
    w = world(Settings(max_waiting=2))
    w.sender("a")
    w.receiver("b")
    assert refused(lambda: w.sender("c")) == (
        429, "Too many waiting pipes; try again later.", "capacity")
    assert refused(lambda: w.receiver("c")) == (
        429, "Too many waiting pipes; try again later.", "capacity")
    assert w.idle("c")
    # Joining a pipe that already waits is no new pipe.
    w.receiver("a")
    assert w.registry.waiting_count() == 1
    # One of the two started streaming, so a new name fits again.
    w.sender("c")
    assert w.registry.waiting_count() == 2


def test_max_active_refuses_new_names_with_429_until_one_ends() -> None:
    w = world(Settings(max_active=1))
    w.sender("a")
    w.receiver("a")
    assert w.registry.active_count() == 1
    assert refused(lambda: w.sender("b")) == (
        429, "Server at maximum active transfer capacity.", "capacity")
    assert refused(lambda: w.receiver("b")) == (
        429, "Server at maximum active transfer capacity.", "capacity")
    w.registry.transfer_ended(w.starter.pipes[0], ok=True, reason=None)
    w.sender("b")
    w.receiver("b")
    assert [p.name for p in w.starter.pipes] == ["a", "b"]


def test_party_that_would_start_a_transfer_at_max_active_gets_429_alone() -> None:
    """Only the newcomer is refused; the parties already waiting keep waiting."""
    w = world(Settings(max_active=1))
    sender_b, pipe_b = w.sender("b", n=2)
    early_b, _ = w.receiver("b", n=2)
    w.receiver("c")
    w.sender("a")
    w.receiver("a")
    with pytest.raises(Refusal) as refused_receiver:
        w.receiver("b", n=2)
    assert (refused_receiver.value.status, refused_receiver.value.code) == (429, "capacity")
    assert early_b.refusals == [] and sender_b.ended == []
    assert w.registry.status("b").receivers == 1
    assert [p.name for p in w.starter.pipes] == ["a"]
    assert w.observer.done == []
    assert w.registry.active_count() == 1
    assert w.registry.waiting_count() == 2
    # A sender that would fill a waiting pipe is refused the same way.
    with pytest.raises(Refusal) as refused_sender:
        w.sender("c")
    assert refused_sender.value.status == 429
    assert pipe_b.state == "waiting"


PARTIES = (429, "Too many senders and receivers connected; try again later.", "capacity")


def test_max_parties_counts_sockets_not_pipes() -> None:
    w = world(Settings(max_parties=4))
    w.receiver("a", n=3)
    w.receiver("a", n=3)
    w.sender("b", n=2)
    receiver_c, pipe_c = w.receiver("c")
    assert w.registry.party_count() == 4
    assert refused(lambda: w.receiver("a", n=3)) == PARTIES  # one more on a waiting pipe
    assert refused(lambda: w.sender("d")) == PARTIES  # a new pipe
    assert refused(lambda: w.sender("c")) == PARTIES  # one that would start a transfer
    assert w.registry.party_count() == 4
    assert w.idle("d") and w.starter.transfers == []
    assert w.registry.status("a").receivers == 2
    # A party that goes (leaves or times out) makes room at once.
    w.registry.leave(pipe_c, receiver_c)
    assert w.registry.party_count() == 3
    w.sender("d", wait=5)
    assert refused(lambda: w.receiver("e")) == PARTIES
    w.clock.advance(5)
    assert w.registry.party_count() == 3
    w.receiver("e")


def test_a_streaming_pipe_holds_its_sender_and_its_live_receivers() -> None:
    w = world(Settings(max_parties=4))
    _, pipe = w.sender(n=3)
    for _ in range(3):
        w.receiver(n=3)
    assert pipe.state == "streaming"
    assert w.registry.party_count() == 4
    assert refused(lambda: w.receiver("x")) == PARTIES
    w.registry.receiver_left(pipe)
    assert w.registry.party_count() == 3
    w.receiver("x")
    w.registry.transfer_ended(pipe, ok=True, reason=None)
    assert w.registry.party_count() == 1
    w.registry.fail_all()
    assert w.registry.party_count() == 0


def test_a_pipe_larger_than_max_parties_never_starts_and_its_parties_keep_waiting() -> None:
    w = world(Settings(max_parties=3))
    sender, _ = w.sender(n=3)
    first, _ = w.receiver(n=3)
    second, _ = w.receiver(n=3)
    assert refused(lambda: w.receiver(n=3)) == PARTIES
    assert w.starter.transfers == []
    assert sender.ended == [] and first.refusals == second.refusals == []
    assert w.registry.status("p").receivers == 2


# -- leaving before streaming --------------------------------------------------


def test_sender_leaving_while_waiting_fails_that_transfer() -> None:
    w = world(Settings(keepalive_interval=30))
    w.clock.advance(2)
    sender, pipe = w.sender(n=2, total=10)
    failed_id = pipe.transfer_id
    receiver, _ = w.receiver(n=2)
    w.clock.advance(3)
    w.registry.leave(pipe, sender)
    assert w.observer.done == [TransferResult(
        name="p", transfer_id=failed_id, ok=False, bytes=0, total_bytes=10,
        started_at=2.0, ended_at=5.0, receivers=1, reason=SENDER_GONE)]
    assert sender.ended == []  # it is gone: nothing is written to it
    status = w.registry.status("p")
    assert (status.state, status.has_sender, status.receivers) == ("waiting", False, 1)
    w.clock.advance(100)
    assert sender.lines == ["[INFO] Waiting for 2 receiver(s) to connect...", CONNECTED]
    assert receiver.refusals == []


def test_receiver_leaving_while_waiting_tells_the_sender() -> None:
    w = world()
    sender, pipe = w.sender(n=2)
    receiver, _ = w.receiver(n=2, wait=10)
    w.registry.leave(pipe, receiver)
    assert sender.lines[-1] == DISCONNECTED
    assert w.registry.status("p").receivers == 0
    w.clock.advance(20)  # its wait timer went with it
    assert receiver.refusals == []
    assert w.observer.done == []


def test_leave_by_a_stranger_or_after_streaming_started_changes_nothing() -> None:
    w = world()
    sender, pipe = w.sender()
    w.registry.leave(pipe, FakeReceiver())
    assert w.registry.status("p").has_sender
    receiver, _ = w.receiver()
    changes = len(w.observer.changes)
    w.registry.leave(pipe, sender)
    w.registry.leave(pipe, receiver)
    assert pipe.state == "streaming"
    assert w.observer.done == []
    assert len(w.observer.changes) == changes


def test_leave_on_an_old_pipe_does_not_touch_its_successor() -> None:
    w = world()
    first, old = w.sender(wait=5)
    w.clock.advance(5)  # forgotten
    second, new = w.sender()
    assert new is not old
    w.registry.leave(old, first)
    assert w.registry.get("p") is new
    assert len(w.observer.done) == 1


# -- forgetting the name after every ending -------------------------------------


def _sender_times_out(w: World) -> None:
    w.sender(wait=3)
    w.clock.advance(3)


def _receiver_times_out(w: World) -> None:
    w.receiver(wait=3)
    w.clock.advance(3)


def _sender_leaves(w: World) -> None:
    sender, pipe = w.sender()
    w.registry.leave(pipe, sender)


def _receiver_leaves(w: World) -> None:
    receiver, pipe = w.receiver()
    w.registry.leave(pipe, receiver)


def _both_leave(w: World) -> None:
    sender, pipe = w.sender(n=2)
    receiver, _ = w.receiver(n=2)
    w.registry.leave(pipe, receiver)
    w.registry.leave(pipe, sender)


def _completes(w: World) -> None:
    w.sender()
    _, pipe = w.receiver()
    w.registry.transfer_ended(pipe, ok=True, reason=None)


def _fails(w: World) -> None:
    w.sender()
    _, pipe = w.receiver()
    w.registry.transfer_ended(pipe, ok=False, reason=SENDER_GONE)


def _idles_out(w: World) -> None:
    w.sender()
    w.receiver()
    w.clock.pump([10.0] * 40)


def _shut_down_waiting(w: World) -> None:
    w.sender(n=2)
    w.receiver(n=2)
    w.registry.fail_all()


def _shut_down_receivers_only(w: World) -> None:
    w.receiver(n=2)
    w.receiver(n=2)
    w.registry.fail_all()


def _shut_down_streaming(w: World) -> None:
    w.sender()
    w.receiver()
    w.registry.fail_all()


ENDINGS = [
    _sender_times_out, _receiver_times_out, _sender_leaves, _receiver_leaves,
    _both_leave, _completes, _fails, _idles_out, _shut_down_waiting,
    _shut_down_receivers_only, _shut_down_streaming,
]


@pytest.mark.parametrize("ending", ENDINGS, ids=[e.__name__[1:] for e in ENDINGS])
@pytest.mark.parametrize("reports", [False, True], ids=["quiet", "reporting"])
def test_the_name_is_forgotten_after_every_ending(
    ending: Callable[[World], None], reports: bool,
) -> None:
    w = world(Settings(idle_timeout=100, keepalive_interval=30))
    w.starter.reports = reports
    ending(w)
    assert w.idle()
    assert w.registry.waiting_count() == 0
    assert w.registry.active_count() == 0
    assert w.clock.getDelayedCalls() == []
    assert len(w.observer.done) <= 1
    # ...and the path can be used again from scratch.
    sender, pipe = w.sender()
    w.receiver()
    assert w.starter.pipes[-1] is pipe
    assert sender.lines == [WAITING_1, CONNECTED, STREAMING_1]


# -- the idle timeout -----------------------------------------------------------


def _streaming(w: World) -> tuple[FakeSender, Pipe]:
    sender, pipe = w.sender()
    w.receiver()
    assert pipe.state == "streaming"
    return sender, pipe


def test_no_byte_moving_for_idle_timeout_aborts_the_transfer() -> None:
    w = world(Settings(idle_timeout=100))
    _, pipe = _streaming(w)
    transfer = w.starter.transfers[0]
    w.clock.pump([0.5] * 199)  # 99.5 s with nothing moving
    assert transfer.aborts == []
    assert pipe.state == "streaming"
    # The check runs every idle_timeout/10: the end comes within one step more.
    w.clock.pump([0.5] * 21)
    assert transfer.aborts == [IDLE_TIMEOUT]
    assert [(d.ok, d.reason) for d in w.observer.done] == [(False, IDLE_TIMEOUT)]
    ended_after = w.observer.done[0].ended_at - w.observer.done[0].started_at
    assert 100 <= ended_after <= 110
    assert pipe.state == "failed"
    assert w.idle()
    assert w.registry.active_count() == 0
    w.clock.advance(1000)
    assert transfer.aborts == [IDLE_TIMEOUT]
    assert len(w.observer.done) == 1


def test_idle_abort_reported_by_the_transfer_itself_is_one_done() -> None:
    w = world(Settings(idle_timeout=100))
    w.starter.reports = True
    _streaming(w)
    w.clock.pump([5.0] * 30)
    assert w.starter.transfers[0].aborts == [IDLE_TIMEOUT]
    assert [(d.ok, d.reason) for d in w.observer.done] == [(False, IDLE_TIMEOUT)]


def test_a_transfer_whose_bytes_keep_moving_is_never_idle() -> None:
    w = world(Settings(idle_timeout=100))
    _, pipe = _streaming(w)
    transfer = w.starter.transfers[0]
    for _ in range(400):  # 2000 s, far beyond the idle timeout
        w.clock.advance(5)
        pipe.bytes += 1
    assert transfer.aborts == []
    assert pipe.state == "streaming"
    assert w.observer.done == []
    last_move = w.clock.seconds()
    while not transfer.aborts:
        w.clock.advance(1)
        assert w.clock.seconds() - last_move <= 111
    assert 100 <= w.clock.seconds() - last_move <= 111
    assert [(d.ok, d.reason, d.bytes) for d in w.observer.done] == [
        (False, IDLE_TIMEOUT, 400)]


def test_slow_but_moving_bytes_reset_the_idle_clock() -> None:
    w = world(Settings(idle_timeout=100))
    _, pipe = _streaming(w)
    for _ in range(10):  # one byte every 90 s: slow, never idle for 100 s
        w.clock.advance(90)
        pipe.bytes += 1
    assert w.starter.transfers[0].aborts == []
    assert pipe.state == "streaming"


# -- ending a transfer ------------------------------------------------------------


def test_transfer_ended_ok_reports_exactly_one_done() -> None:
    w = world()
    w.clock.advance(10)
    sender, pipe = w.sender(total=12345)
    w.receiver()
    pipe.bytes = 12345
    w.clock.advance(2.5)
    w.registry.transfer_ended(pipe, ok=True, reason="ignored when ok")
    assert w.observer.done == [TransferResult(
        name="p", transfer_id=pipe.transfer_id, ok=True, bytes=12345,
        total_bytes=12345, started_at=10.0, ended_at=12.5, receivers=1,
        reason=None)]
    assert w.observer.done[0].duration_sec == 2.5
    assert w.observer.done[0].state == "complete"
    assert pipe.state == "complete"
    assert w.registry.active_count() == 0
    assert w.idle()
    assert w.clock.getDelayedCalls() == []
    # The path is reusable, as a new transfer.
    _, again = w.sender()
    assert again is not pipe
    assert again.transfer_id != pipe.transfer_id
    assert sender.ended == []  # ending the sender is the byte path's job


def test_transfer_ended_twice_is_one_done() -> None:
    w = world()
    _, pipe = _streaming(w)
    w.registry.transfer_ended(pipe, ok=False, reason=SENDER_GONE)
    w.registry.transfer_ended(pipe, ok=True, reason=None)
    w.registry.transfer_ended(pipe, ok=False, reason="again")
    assert [(d.ok, d.reason) for d in w.observer.done] == [(False, SENDER_GONE)]
    assert pipe.state == "failed"
    assert w.registry.active_count() == 0


def test_transfer_ended_for_an_old_pipe_leaves_the_new_one_alone() -> None:
    w = world()
    _, old = _streaming(w)
    w.registry.transfer_ended(old, ok=True, reason=None)
    _, new = w.sender()
    w.registry.transfer_ended(old, ok=False, reason="late")
    assert w.registry.get("p") is new
    assert len(w.observer.done) == 1


def test_receiver_left_during_streaming_tells_the_sender_and_drops_the_count() -> None:
    w = world()
    sender, pipe = w.sender(n=3)
    for _ in range(3):
        w.receiver(n=3)
    w.registry.receiver_left(pipe)
    assert sender.lines[-1] == DISCONNECTED
    status = w.registry.status("p")
    assert (status.state, status.receivers, status.total_receivers) == (
        "streaming", 2, 3)
    assert w.observer.changes[-1].receivers == 2
    w.registry.receiver_left(pipe)
    assert w.registry.status("p").receivers == 1
    assert sender.lines.count(DISCONNECTED) == 2
    assert w.observer.done == []


def test_receiver_left_outside_streaming_is_ignored() -> None:
    w = world()
    sender, pipe = w.sender(n=2)
    w.registry.receiver_left(pipe)
    assert sender.lines == ["[INFO] Waiting for 2 receiver(s) to connect..."]
    w.receiver(n=2)
    w.receiver(n=2)
    w.registry.transfer_ended(pipe, ok=True, reason=None)
    changes = len(w.observer.changes)
    w.registry.receiver_left(pipe)
    assert len(w.observer.changes) == changes


# -- shutting down --------------------------------------------------------------


def test_draining_refuses_new_pipes_but_running_and_waiting_ones_go_on() -> None:
    w = world()
    _, running = _streaming(w)
    w.sender("waiting-one", n=2)
    w.registry.start_draining()
    assert w.registry.draining
    draining = (503, "Server is shutting down; try again shortly.", "draining")
    assert refused(lambda: w.sender("new")) == draining
    assert refused(lambda: w.receiver("new")) == draining
    # An already-waiting pipe still takes its parties, so it can complete.
    w.receiver("waiting-one", n=2)
    assert w.registry.status("waiting-one").receivers == 1
    assert w.starter.transfers[0].aborts == []
    running.bytes = 5
    w.registry.transfer_ended(running, ok=True, reason=None)
    assert [(d.name, d.ok, d.bytes) for d in w.observer.done] == [("p", True, 5)]


@pytest.mark.parametrize("reports", [False, True], ids=["quiet", "reporting"])
def test_fail_all_aborts_streaming_and_refuses_waiting_with_503(reports: bool) -> None:
    w = world()
    w.starter.reports = reports
    _, running = _streaming(w)
    sender_b, _ = w.sender("b", n=2)
    receiver_b, _ = w.receiver("b", n=2)
    receiver_c, _ = w.receiver("c", n=2)
    w.registry.fail_all()
    assert w.starter.transfers[0].aborts == [SHUTTING_DOWN]
    assert running.state == "failed"
    shutting = (503, "Server shutting down.", "draining")
    assert receiver_b.refusals == [shutting]
    assert receiver_c.refusals == [shutting]
    assert sender_b.ended == ["Server shutting down."]
    assert sorted((d.name, d.ok, d.reason) for d in w.observer.done) == [
        ("b", False, SHUTTING_DOWN), ("p", False, SHUTTING_DOWN)]
    for name in ("p", "b", "c"):
        assert w.idle(name)
    assert w.registry.active_count() == 0
    assert w.registry.waiting_count() == 0
    assert w.clock.getDelayedCalls() == []


def test_fail_all_with_a_custom_reason() -> None:
    w = world()
    _streaming(w)
    receiver, _ = w.receiver("b")
    w.registry.fail_all("Maintenance")
    assert w.starter.transfers[0].aborts == ["Maintenance"]
    assert receiver.refusals == [(503, "Maintenance.", "draining")]
    assert [d.reason for d in w.observer.done] == ["Maintenance"]


# -- observers --------------------------------------------------------------------


def test_observer_sees_waiting_streaming_complete() -> None:
    w = world()
    w.sender()
    w.clock.advance(1)
    _, pipe = w.receiver()
    pipe.bytes = 42
    w.clock.advance(1)
    w.registry.transfer_ended(pipe, ok=True, reason=None)
    assert w.observer.states("p") == [
        ("waiting", True, 0),
        ("waiting", True, 1),
        ("streaming", True, 1),
        ("complete", True, 1),
    ]
    last = w.observer.changes[-1]
    assert (last.bytes, last.started_at) == (42, 1.0)
    assert last.transfer_id == pipe.transfer_id
    assert len(w.observer.done) == 1


def test_observer_sees_a_failed_transfer_and_a_sender_that_gave_up() -> None:
    w = world()
    sender, pipe = w.sender(n=2)
    w.receiver(n=2)
    w.registry.leave(pipe, sender)
    w.sender(n=2)
    w.receiver(n=2)
    w.registry.transfer_ended(pipe, ok=False, reason=SENDER_GONE)
    assert w.observer.states("p") == [
        ("waiting", True, 0),
        ("waiting", True, 1),
        ("waiting", False, 1),
        ("waiting", True, 1),
        ("waiting", True, 2),
        ("streaming", True, 2),
        ("failed", True, 2),
    ]
    assert [d.reason for d in w.observer.done] == [SENDER_GONE, SENDER_GONE]


def test_observer_sees_the_pipe_go_idle_when_the_last_party_leaves() -> None:
    w = world()
    receiver, pipe = w.receiver(wait=5)
    w.clock.advance(5)
    assert w.observer.states("p") == [("waiting", False, 1), ("idle", False, 0)]


# Regression (fixed in 7993d3f): observers were not told the pipe went idle.
def test_observer_sees_receivers_only_pipe_go_idle_on_fail_all() -> None:
    w = world()
    w.receiver(n=2)
    w.registry.fail_all()
    assert w.observer.states("p")[-1] == ("idle", False, 0)


def test_a_raising_observer_breaks_nothing() -> None:
    clock = Clock()
    registry = PipeRegistry(clock, Settings())
    starter = Starter()
    registry.set_transfer_starter(starter)
    bad = Exploding()
    good = Recorder()
    registry.add_observer(bad)
    registry.add_observer(good)
    with capturedLogs() as events:
        sender = FakeSender()
        registry.join_sender("p", 1, 300, sender, None)
        pipe = joined(registry.join_receiver("p", 1, 300, FakeReceiver()))
        registry.transfer_ended(pipe, ok=True, reason=None)
    assert good.states("p") == [
        ("waiting", True, 0), ("waiting", True, 1), ("streaming", True, 1),
        ("complete", True, 1)]
    assert [d.ok for d in good.done] == [True]
    assert bad.calls == 5
    failures = [e for e in events if e.get("log_level") == LogLevel.critical]
    assert len(failures) == 5
    assert all(e["log_failure"].check(RuntimeError) for e in failures)
    assert sender.lines == [WAITING_1, CONNECTED, STREAMING_1]
    assert registry.active_count() == 0
    assert registry.status("p").state == "idle"


def test_starting_without_a_byte_path_is_a_programming_error() -> None:
    registry = PipeRegistry(Clock(), Settings())
    registry.join_receiver("p", 1, 300, FakeReceiver())
    with pytest.raises(RuntimeError, match="no byte path"):
        registry.join_sender("p", 1, 300, FakeSender(), None)


def test_a_byte_path_that_fails_to_start_answers_everyone_and_ends_the_pipe() -> None:
    w = world()

    def broken(pipe: Pipe) -> object:
        raise RuntimeError("bug in the byte path")

    w.registry.set_transfer_starter(broken)
    receiver, _ = w.receiver()
    sender, pipe = w.sender()
    assert receiver.refusals == [(500, "Internal server error.", "internal")]
    assert sender.ended == ["Internal server error."]
    assert [(d.ok, d.reason) for d in w.observer.done] == [(False, "Internal server error")]
    assert w.idle() and w.registry.active_count() == 0
    assert w.clock.getDelayedCalls() == []
