"""The spectator observer in memory: event order, linger, caps (a Clock, a fake
registry, HTTP over StringTransport)."""

from __future__ import annotations

import json

import pytest

from hoodypipe.core.events import PipeStatus
from hoodypipe.settings import Settings
from tests.kit.spectators import (
    FAST,
    Connection,
    Server,
    assert_increasing_ids,
    kinds,
    whole_transfer,
)

# -- the event sequence --


def test_first_event_is_state_idle_with_headers() -> None:
    server = Server(FAST)
    c = server.get("/p?progress")
    assert c.code == 200
    assert c.header("Content-Type") == "text/event-stream"
    assert c.header("Cache-Control") == "no-cache"
    assert c.header("X-Accel-Buffering") == "no"
    assert c.header("Content-Encoding") is None
    [first] = c.events()
    assert first.event == "state"
    assert first.retry is not None
    assert first.data["state"] == "idle"
    assert first.data["lastTransfer"] is None
    assert server.observer.spectators_of("p") == 1


def test_whole_transfer_sequence() -> None:
    server = Server(FAST)
    c = server.get("/p?progress")
    whole_transfer(server)
    events = c.events()
    assert_increasing_ids(events)
    states = [e.data["state"] for e in events if e.event == "state"]
    assert states == ["idle", "waiting", "streaming", "complete"]
    progress = [e.data for e in events if e.event == "progress"]
    # 2 s at one every 0.25 s, plus the final one.
    assert 8 <= len(progress) <= 10
    moved = [p["bytes"] for p in progress]
    assert moved == sorted(moved)
    assert moved[-1] == 2_000_000
    assert progress[-1]["totalBytes"] == 10_000_000
    assert progress[-2]["mbps"] == pytest.approx(1.0, rel=0.2)
    assert progress[-2]["etaSec"] == pytest.approx(8.0, rel=0.3)
    done = [e.data for e in events if e.event == "done"]
    assert len(done) == 1
    assert done[0]["ok"] is True and done[0]["bytes"] == 2_000_000
    assert done[0]["durationSec"] == pytest.approx(2.0)
    # the end: the last progress, done, the final state, then a clean end
    assert kinds(events)[-3:] == ["progress", "done", "state"]
    assert events[-1].data["state"] == "complete"
    assert c.ended
    assert server.observer.spectators_of("p") == 0
    assert server.observer.watched_paths == 0


def test_progress_timer_is_per_path_not_per_spectator() -> None:
    def status_calls(spectators: int) -> int:
        server = Server(FAST)
        for _ in range(spectators):
            server.get("/p?progress")
        server.registry.streaming("p", server.clock)
        before = server.registry.status_calls
        server.advance(5.0)
        return server.registry.status_calls - before

    one, many = status_calls(1), status_calls(20)
    assert one == many
    assert 18 <= one <= 22  # ~4 a second for 5 s


def test_progress_stops_when_not_streaming() -> None:
    server = Server(FAST)
    c = server.get("/p?progress")
    server.registry.waiting("p", server.clock)
    server.advance(3.0)
    assert "progress" not in kinds(c.events())


def test_spectator_joining_mid_stream_gets_state_then_progress() -> None:
    server = Server(FAST)
    server.registry.streaming("p", server.clock, total_bytes=100)
    c = server.get("/p?progress")
    server.registry.moved("p", 50)
    server.advance(0.3)
    events = c.events()
    assert kinds(events)[:2] == ["state", "progress"]
    assert events[0].data["state"] == "streaming"
    assert events[1].data["percent"] == 50.0


def test_parties_changing_while_waiting_are_states() -> None:
    server = Server(FAST)
    c = server.get("/p?progress")
    reg = server.registry
    reg.change(PipeStatus("p", "waiting", has_sender=False, receivers=1,
                          total_receivers=2))
    reg.change(PipeStatus("p", "waiting", has_sender=False, receivers=2,
                          total_receivers=2))
    reg.change(PipeStatus("p", "waiting", has_sender=False, receivers=2,
                          total_receivers=2))  # no change: not repeated
    states = [e.data for e in c.events() if e.event == "state"]
    assert [(s["state"], s["receivers"]) for s in states] == [
        ("idle", 0), ("waiting", 1), ("waiting", 2)
    ]
    assert states[-1]["totalReceivers"] == 2


def test_failure_while_streaming() -> None:
    server = Server(FAST)
    c = server.get("/p?progress")
    server.registry.streaming("p", server.clock)
    server.registry.moved("p", 1234)
    server.advance(0.5)
    server.registry.finish("p", server.clock, ok=False, reason="Sender disconnected")
    events = c.events()
    assert [e.data["state"] for e in events if e.event == "state"][-1] == "failed"
    done = [e.data for e in events if e.event == "done"]
    assert len(done) == 1
    assert done[0]["ok"] is False
    assert done[0]["reason"] == "Sender disconnected"
    assert done[0]["bytes"] == 1234
    assert c.ended


# -- linger, 204, lastTransfer --


def test_latecomer_in_linger_gets_done_then_state() -> None:
    server = Server(FAST)
    first = server.get("/p?progress")
    whole_transfer(server)
    live = first.events()
    server.advance(10.0, step=1.0)
    late = server.get("/p?progress")
    events = late.events()
    assert kinds(events) == ["done", "state"]
    # the very events the live spectators got, ids included (comparable)
    assert [(e.id, e.data) for e in events] == [(e.id, e.data) for e in live[-2:]]
    assert events[0].retry is not None  # the first event carries the hint
    assert events[1].data["state"] == "complete"
    assert_increasing_ids(events)
    assert late.ended
    assert server.observer.watched_paths == 0


def test_reconnect_after_done_gets_204() -> None:
    server = Server(FAST)
    first = server.get("/p?progress")
    whole_transfer(server)
    done_id = [e for e in first.events() if e.event == "done"][0].id
    again = server.get("/p?progress", Last_Event_ID=str(done_id))
    assert again.code == 204
    assert again.body == b""
    after = server.get("/p?progress", Last_Event_ID=str(done_id + 1))  # the state
    assert after.code == 204
    earlier = server.get("/p?progress", Last_Event_ID=str(done_id - 1))
    assert kinds(earlier.events()) == ["done", "state"]


def test_linger_expires_then_idle_with_last_transfer() -> None:
    server = Server(Settings(linger=30.0))
    server.get("/p?progress")
    whole_transfer(server)
    server.advance(29.0, step=1.0)
    assert server.observer.lingering("p")
    server.advance(1.5, step=0.5)
    assert not server.observer.lingering("p")
    c = server.get("/p?progress")
    [state] = c.events()
    assert state.data["state"] == "idle"
    last = state.data["lastTransfer"]
    assert last["ok"] is True and last["bytes"] == 2_000_000
    snapshot = json.loads(server.get("/p?status").body)
    assert snapshot["state"] == "idle"
    assert snapshot["lastTransfer"] == last


def test_new_transfer_ends_the_linger() -> None:
    server = Server(FAST)
    whole_transfer(server)
    assert server.observer.lingering("p")
    server.registry.waiting("p", server.clock)
    assert not server.observer.lingering("p")
    c = server.get("/p?progress")
    [state] = c.events()
    assert state.data["state"] == "waiting"


def test_failed_while_waiting_lingers_as_failed() -> None:
    server = Server(FAST)
    c = server.get("/p?progress")
    reg = server.registry
    reg.waiting("p", server.clock)
    from hoodypipe.core.events import TransferResult

    reg.done(TransferResult(name="p", transfer_id="t", ok=False, bytes=0,
                            total_bytes=None, started_at=server.clock.seconds(),
                            ended_at=server.clock.seconds(), receivers=0,
                            reason="Timed out waiting for receivers"))
    events = c.events()
    assert kinds(events) == ["state", "state", "done", "state"]  # no progress
    assert events[-2].data["reason"] == "Timed out waiting for receivers"
    assert events[-1].data["state"] == "failed"
    late = server.get("/p?progress")
    assert [e.data["state"] for e in late.events()] == ["failed", "failed"]


def test_last_transfer_evicted_by_age_and_count() -> None:
    server = Server(Settings(linger=1.0, last_transfer_ttl=100.0, last_transfer_max=2))
    for name in ("a", "b", "c"):
        whole_transfer(server, name)
    server.advance(2.0)

    def last(name: str) -> object:
        return json.loads(server.get(f"/{name}?status").body)["lastTransfer"]

    assert last("a") is None  # evicted by count
    assert last("b") is not None and last("c") is not None
    server.advance(100.0, step=5.0)
    assert last("b") is None and last("c") is None  # evicted by age


# -- limits --


def test_max_spectators_per_path() -> None:
    server = Server(Settings(max_spectators=3))
    ok = [server.get("/p?progress") for _ in range(3)]
    assert all(c.code == 200 for c in ok)
    refused = server.get("/p?progress")
    assert refused.code == 429
    assert refused.head.startswith(b"HTTP/1.1 429 Too Many Requests\r\n")
    assert refused.header("Content-Type", ).startswith("text/plain")
    assert refused.body == b"[ERROR] Too many spectators on this pipe (max 3).\n"
    assert [r.code for r in server.route.refused] == ["spectators"]
    assert server.observer.spectators_of("p") == 3
    # another path is fine, and a place frees up when one leaves
    assert server.get("/q?progress").code == 200
    ok[0].close()
    assert server.get("/p?progress").code == 200


def test_max_spectators_does_not_limit_snapshots_or_pages() -> None:
    server = Server(Settings(max_spectators=1))
    server.get("/p?progress")
    assert server.get("/p?status").code == 200
    assert server.get("/p?progress", Accept="text/html").code == 200


def test_max_watched_paths() -> None:
    server = Server(Settings(max_watched=2))
    assert server.get("/a?progress").code == 200
    assert server.get("/b?progress").code == 200
    assert server.get("/a?progress").code == 200  # already watched
    refused = server.get("/c?progress")
    assert refused.code == 429
    assert refused.body == b"[ERROR] Too many watched pipes (max 2).\n"
    assert [r.code for r in server.route.refused] == ["watched_paths"]
    assert server.observer.watched_paths == 2


def test_disconnect_frees_everything() -> None:
    server = Server(FAST)
    c = server.get("/p?progress")
    server.registry.streaming("p", server.clock)
    server.advance(1.0)
    c.close()
    assert server.observer.watched_paths == 0
    assert server.clock.getDelayedCalls() == []


def test_stop_ends_every_stream() -> None:
    server = Server(FAST)
    conns: list[Connection] = [server.get(f"/p{i}?progress") for i in range(3)]
    server.registry.streaming("p0", server.clock)
    whole_transfer(server, "x")
    server.observer.stop()
    assert all(c.ended for c in conns)
    # only the finished connections' keep-alive timeouts are left
    left = server.clock.getDelayedCalls()
    assert all("TimeoutMixin" in repr(call) for call in left), left


def test_lingering_results_are_bounded_too() -> None:
    server = Server(Settings(linger=30.0, last_transfer_max=2))
    for name in ("a", "b", "c"):
        whole_transfer(server, name)
    assert not server.observer.lingering("a")
    assert server.observer.lingering("b") and server.observer.lingering("c")


# -- the linger counts like any other state of the path --


def test_spectators_held_into_the_linger_keep_latecomers_out() -> None:
    server = Server(Settings(max_spectators=3, linger=30.0), stall_timeout=1000.0)
    slow = [server.get("/p?progress") for _ in range(3)]
    server.registry.streaming("p", server.clock)
    for c in slow:
        c.pause()  # their final events wait in their queues
    server.registry.finish("p", server.clock)
    assert server.observer.lingering("p")
    assert server.observer.spectators_of("p") == 3
    late = server.get("/p?progress")
    assert late.code == 429
    assert late.body == b"[ERROR] Too many spectators on this pipe (max 3).\n"
    # one drains and ends: its place is free for a latecomer
    slow[0].resume()
    assert slow[0].ended
    assert server.observer.spectators_of("p") == 2
    again = server.get("/p?progress")
    assert again.code == 200
    assert kinds(again.events()) == ["done", "state"]
    assert again.ended
    assert server.observer.spectators_of("p") == 2  # the latecomer left again


def test_a_lingering_path_counts_as_watched() -> None:
    server = Server(Settings(max_watched=1, linger=30.0))
    whole_transfer(server, "done-path")
    assert server.observer.lingering("done-path")
    live = server.get("/live?progress")
    assert live.code == 200
    late = server.get("/done-path?progress")
    assert late.code == 429
    assert late.body == b"[ERROR] Too many watched pipes (max 1).\n"
    live.close()
    assert kinds(server.get("/done-path?progress").events()) == ["done", "state"]


class HeldFeed:
    """A feed whose response has not ended yet (what a paused latecomer is)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[object] = []

    def send(self, block: object, final: bool = False) -> None:
        self.sent.append(block)

    def progress(self, block: object) -> None:
        self.sent.append(block)

    def close(self) -> None:
        pass


def test_a_latecomer_counts_from_admission_to_its_end() -> None:
    server = Server(Settings(max_spectators=2, linger=30.0))
    whole_transfer(server)
    observer = server.observer
    held = [HeldFeed("p"), HeldFeed("p")]
    for feed in held:
        opening = observer.add(feed, None)  # type: ignore[arg-type]
        assert opening is not None and opening.final
    assert observer.spectators_of("p") == 2 and observer.spectators == 2
    assert server.get("/p?progress").code == 429
    observer.remove(held[0])  # type: ignore[arg-type]
    assert observer.spectators_of("p") == 1
    observer.remove(held[1])  # type: ignore[arg-type]
    assert observer.watched_paths == 0
