"""The spectator hub in memory: a Clock, a fake registry, HTTP over StringTransport."""

from __future__ import annotations

import json

import pytest

from hoodypipe.core.events import PipeStatus
from hoodypipe.settings import Settings
from tests.kit.spectators import Connection, Event, Server

FAST = Settings(
    progress_interval=0.25, heartbeat_interval=15.0, linger=30.0, spectator_ttl=1800.0
)


def kinds(events: list[Event]) -> list[str]:
    return [e.event or "" for e in events]


def assert_increasing_ids(events: list[Event]) -> None:
    ids = [e.id for e in events]
    assert all(i is not None for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids), ids


def whole_transfer(server: Server, name: str = "p", size: int = 10_000_000) -> None:
    """waiting, then 2 s of streaming at 1 MB/s... then complete."""
    reg, clock = server.registry, server.clock
    reg.waiting(name, clock, total_bytes=size)
    server.advance(1.0)
    reg.streaming(name, clock, total_bytes=size)
    for step in range(1, 9):
        server.advance(0.25)
        reg.moved(name, step * 250_000)
    reg.finish(name, clock)


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
    assert server.hub.spectators_of("p") == 1


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
    # done is last, then the stream ends cleanly
    assert events[-1].event == "done"
    k = kinds(events)
    assert k.index("done") > max(i for i, x in enumerate(k) if x == "progress")
    assert c.ended
    assert server.hub.spectators_of("p") == 0
    assert server.hub.watched_paths == 0


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


# -- heartbeats and TTL --


def test_heartbeat_only_when_quiet() -> None:
    server = Server(Settings(heartbeat_interval=15.0))
    c = server.get("/p?progress")
    server.advance(14.9, step=0.5)
    assert c.comments() == 0
    server.advance(0.2)
    assert c.comments() == 1
    server.advance(15.0, step=0.5)
    assert c.comments() == 2
    # While progress flows there is no need for heartbeats.
    server.registry.streaming("p", server.clock)
    server.advance(40.0, step=0.25)
    assert c.comments() == 2


def test_heartbeat_gap_never_exceeds_interval() -> None:
    server = Server(Settings(heartbeat_interval=1.0, progress_interval=0.25))
    c = server.get("/p?progress")
    sizes: list[tuple[float, int]] = []
    for _ in range(100):
        server.advance(0.1, step=0.1)
        sizes.append((server.clock.seconds(), len(c.raw)))
    last_change = sizes[0][0]
    longest = 0.0
    for (t, size), (_, previous) in zip(sizes[1:], sizes, strict=False):
        if size != previous:
            longest = max(longest, t - last_change)
            last_change = t
    assert longest <= 1.0 + 1e-6


def test_ttl_ends_the_stream_cleanly() -> None:
    server = Server(Settings(spectator_ttl=60.0))
    c = server.get("/p?progress")
    server.advance(59.0, step=1.0)
    assert not c.ended
    server.advance(1.5, step=0.5)
    assert c.ended
    assert not c.aborted
    assert server.hub.watched_paths == 0


# -- linger, 204, lastTransfer --


def test_latecomer_in_linger_gets_state_then_done() -> None:
    server = Server(FAST)
    first = server.get("/p?progress")
    whole_transfer(server)
    live_done = [e for e in first.events() if e.event == "done"][0]
    server.advance(10.0, step=1.0)
    late = server.get("/p?progress")
    events = late.events()
    assert kinds(events) == ["state", "done"]
    assert events[0].data["state"] == "complete"
    assert events[1].data == live_done.data
    assert events[1].id == live_done.id  # the same event, comparable ids
    assert_increasing_ids(events)
    assert late.ended
    assert server.hub.watched_paths == 0


def test_reconnect_after_done_gets_204() -> None:
    server = Server(FAST)
    first = server.get("/p?progress")
    whole_transfer(server)
    done_id = [e for e in first.events() if e.event == "done"][0].id
    again = server.get("/p?progress", Last_Event_ID=str(done_id))
    assert again.code == 204
    assert again.body == b""
    earlier = server.get("/p?progress", Last_Event_ID=str(done_id - 1))
    assert kinds(earlier.events()) == ["state", "done"]


def test_linger_expires_then_idle_with_last_transfer() -> None:
    server = Server(Settings(linger=30.0))
    server.get("/p?progress")
    whole_transfer(server)
    server.advance(29.0, step=1.0)
    assert server.hub.lingering("p")
    server.advance(1.5, step=0.5)
    assert not server.hub.lingering("p")
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
    assert server.hub.lingering("p")
    server.registry.waiting("p", server.clock)
    assert not server.hub.lingering("p")
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
    assert kinds(events) == ["state", "state", "state", "done"]  # no progress
    assert events[-1].data["reason"] == "Timed out waiting for receivers"
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
    assert refused.header("Content-Type", ).startswith("text/plain")
    assert refused.body.startswith(b"[ERROR] ")
    assert refused.body.count(b"\n") == 1
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
    assert refused.body.startswith(b"[ERROR] ")


def test_disconnect_frees_everything() -> None:
    server = Server(FAST)
    c = server.get("/p?progress")
    server.registry.streaming("p", server.clock)
    server.advance(1.0)
    c.close()
    assert server.hub.watched_paths == 0
    assert server.clock.getDelayedCalls() == []


# -- slow and stalled spectators --


def test_paused_spectator_coalesces_progress_and_queues_states() -> None:
    server = Server(FAST, stall_timeout=1000.0)
    c = server.get("/p?progress")
    server.registry.streaming("p", server.clock, total_bytes=10_000)
    server.advance(0.3)
    c.pause()
    written = len(c.raw)
    for step in range(1, 41):  # 10 s of progress while not reading
        server.registry.moved("p", step * 100)
        server.advance(0.25)
    server.registry.change(PipeStatus("p", "streaming", has_sender=True, receivers=0,
                                      total_receivers=1, bytes=4000,
                                      total_bytes=10_000, started_at=1000.0))
    assert len(c.raw) == written  # nothing written while paused
    feed = next(iter(server.hub._groups["p"].feeds))  # noqa: SLF001
    assert feed.progress_pending and feed.queued == 1
    c.resume()
    events = c.events()
    assert_increasing_ids(events)
    assert kinds(events[:3]) == ["state", "state", "progress"]  # before the pause
    # after it: only the latest progress (not forty), then the queued state
    assert kinds(events[3:]) == ["progress", "state"]
    assert events[3].data["bytes"] == 4000
    assert events[4].data["receivers"] == 0


def test_paused_spectator_still_gets_done_on_resume() -> None:
    server = Server(FAST, stall_timeout=1000.0)
    c = server.get("/p?progress")
    server.registry.streaming("p", server.clock)
    c.pause()
    server.registry.moved("p", 77)
    server.advance(1.0)
    server.registry.finish("p", server.clock)
    assert not c.ended
    c.resume()
    events = c.events()
    assert kinds(events)[-3:] == ["progress", "state", "done"]
    assert events[-3].data["bytes"] == 77
    assert_increasing_ids(events)
    assert c.ended


def test_stuck_spectator_is_dropped() -> None:
    server = Server(FAST, stall_timeout=30.0)
    c = server.get("/p?progress")
    server.registry.streaming("p", server.clock)
    c.pause()
    server.advance(29.0, step=0.5)
    assert not c.aborted
    server.advance(1.5, step=0.5)
    assert c.aborted
    c.close()  # the transport then reports the connection lost
    assert server.hub.watched_paths == 0


def test_resuming_in_time_keeps_the_spectator() -> None:
    server = Server(FAST, stall_timeout=30.0)
    c = server.get("/p?progress")
    server.registry.streaming("p", server.clock)
    for _ in range(3):
        c.pause()
        server.advance(20.0, step=0.5)
        c.resume()
    assert not c.aborted
    assert server.hub.spectators_of("p") == 1


def test_default_stall_bound_is_a_few_heartbeats() -> None:
    server = Server(Settings(heartbeat_interval=2.0))
    c = server.get("/p?progress")
    c.pause()
    server.advance(3.9, step=0.1)
    assert not c.aborted
    server.advance(0.2, step=0.1)
    assert c.aborted


def test_queue_stays_tiny_however_many_transitions() -> None:
    server = Server(FAST, stall_timeout=1000.0)
    c = server.get("/p?progress")
    c.pause()
    reg = server.registry
    for i in range(200):
        reg.change(PipeStatus("p", "waiting", has_sender=bool(i % 2), receivers=i % 3,
                              total_receivers=3))
    feed = next(iter(server.hub._groups["p"].feeds))  # noqa: SLF001
    assert feed.queued == 1  # consecutive states coalesce to the newest
    reg.streaming("p", server.clock)
    reg.finish("p", server.clock)
    assert feed.queued == 2  # the state and the done; nothing after done
    reg.waiting("p", server.clock)
    assert feed.queued == 2
    c.resume()
    events = c.events()
    # the idle state before the pause, then the final progress (pending),
    # the newest state and the done
    assert kinds(events) == ["state", "progress", "state", "done"]
    assert events[2].data["state"] == "complete"
    assert_increasing_ids(events)
    assert c.ended


def test_queue_over_its_bound_drops_the_spectator() -> None:
    server = Server(FAST, stall_timeout=1000.0, max_queue=1)
    c = server.get("/p?progress")
    c.pause()
    server.registry.waiting("p", server.clock)
    assert not c.aborted
    server.registry.streaming("p", server.clock)
    server.registry.finish("p", server.clock, ok=False, reason="x")
    assert c.aborted


def test_heartbeat_not_written_while_paused() -> None:
    server = Server(Settings(heartbeat_interval=1.0), stall_timeout=1000.0)
    c = server.get("/p?progress")
    c.pause()
    written = len(c.raw)
    server.advance(10.0, step=0.25)
    assert len(c.raw) == written
    c.resume()
    server.advance(1.1, step=0.1)
    assert c.comments() >= 1


# -- snapshot, negotiation, HEAD --


def test_status_snapshot() -> None:
    server = Server(FAST)
    server.registry.streaming("p", server.clock, total_bytes=1000)
    server.registry.moved("p", 250)
    server.advance(1.0)
    c = server.get("/p?status")
    assert c.code == 200
    assert c.header("Content-Type") == "application/json"
    assert c.header("Cache-Control") == "no-store"
    body = json.loads(c.body)
    assert body["state"] == "streaming"
    assert body["bytes"] == body["bytesTransferred"] == 250
    assert body["percent"] == 25.0
    for key in ("state", "hasSender", "receivers", "activeReceivers", "totalReceivers",
                "bytes", "bytesTransferred", "totalBytes", "percent", "mbps", "speed",
                "etaSec", "eta", "elapsedSec", "elapsed", "reason", "transferId",
                "sha256", "lastTransfer"):
        assert key in body
    assert server.hub.watched_paths == 0  # a snapshot watches nothing


def test_status_never_used_name_is_idle() -> None:
    body = json.loads(Server().get("/never-used?status").body)
    assert body["state"] == "idle"
    assert body["bytes"] == 0


def test_head_status_is_headers_only() -> None:
    server = Server()
    get = server.get("/p?status")
    head = server.get("/p?status", method="HEAD")
    assert head.code == 200
    assert head.header("Cache-Control") == "no-store"
    assert head.header("Content-Type") == "application/json"
    assert head.header("Content-Length") == str(len(get.body))
    assert head.raw.endswith(b"\r\n\r\n")
    assert head.raw.partition(b"\r\n\r\n")[2] == b""


def test_status_wins_over_progress() -> None:
    server = Server()
    c = server.get("/p?progress&status")
    assert c.header("Content-Type") == "application/json"


def test_accept_json_gives_the_snapshot() -> None:
    server = Server()
    c = server.get("/p?progress", Accept="application/json")
    assert c.header("Content-Type") == "application/json"
    assert c.header("Cache-Control") == "no-store"
    assert json.loads(c.body)["state"] == "idle"


def test_accept_html_gives_the_dashboard() -> None:
    server = Server()
    c = server.get("/p?progress", Accept="text/html,*/*;q=0.8")
    assert c.code == 200
    assert c.header("Content-Type") == "text/html; charset=utf-8"
    csp = c.header("Content-Security-Policy") or ""
    nonce = csp.split("'nonce-")[1].split("'")[0]
    assert f'nonce="{nonce}"' in c.body.decode()
    assert server.hub.watched_paths == 0


def test_dashboard_snapshot_during_linger_reads_complete() -> None:
    server = Server(FAST)
    whole_transfer(server)
    body = json.loads(server.get("/p?status").body)
    assert body["state"] == "complete"
    assert body["bytes"] == 2_000_000
    assert body["elapsedSec"] == pytest.approx(2.0)
    assert body["lastTransfer"]["ok"] is True


def test_stop_ends_every_stream() -> None:
    server = Server(FAST)
    conns: list[Connection] = [server.get(f"/p{i}?progress") for i in range(3)]
    server.registry.streaming("p0", server.clock)
    whole_transfer(server, "x")
    server.hub.stop()
    assert all(c.ended for c in conns)
    # only the finished connections' keep-alive timeouts are left
    left = server.clock.getDelayedCalls()
    assert all("TimeoutMixin" in repr(call) for call in left), left


def test_lingering_results_are_bounded_too() -> None:
    server = Server(Settings(linger=30.0, last_transfer_max=2))
    for name in ("a", "b", "c"):
        whole_transfer(server, name)
    assert not server.hub.lingering("a")
    assert server.hub.lingering("b") and server.hub.lingering("c")
