"""One spectator's feed in memory: heartbeats, TTL, slow and stalled readers."""

from __future__ import annotations

from hoodypipe.core.events import PipeStatus
from hoodypipe.settings import Settings
from hoodypipe.spectators.feed import Phase
from tests.kit.spectators import FAST, Server, assert_increasing_ids, kinds

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
    assert server.observer.watched_paths == 0


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
    feed = next(iter(server.observer._groups["p"].feeds))  # noqa: SLF001
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
    assert kinds(events)[-3:] == ["progress", "done", "state"]
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
    assert server.observer.watched_paths == 0


def test_resuming_in_time_keeps_the_spectator() -> None:
    server = Server(FAST, stall_timeout=30.0)
    c = server.get("/p?progress")
    server.registry.streaming("p", server.clock)
    for _ in range(3):
        c.pause()
        server.advance(20.0, step=0.5)
        c.resume()
    assert not c.aborted
    assert server.observer.spectators_of("p") == 1


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
    feed = next(iter(server.observer._groups["p"].feeds))  # noqa: SLF001
    assert feed.queued == 1  # consecutive states coalesce to the newest
    reg.streaming("p", server.clock)
    assert feed.queued == 1  # streaming replaced the waiting states
    reg.finish("p", server.clock)
    assert feed.queued == 3  # streaming, done, the final state; nothing after
    reg.waiting("p", server.clock)
    assert feed.queued == 3
    c.resume()
    events = c.events()
    # the idle state before the pause, then in id order the streaming state,
    # the final progress (pending), the done and the final state
    assert kinds(events) == ["state", "state", "progress", "done", "state"]
    assert [e.data["state"] for e in events if e.event == "state"] == [
        "idle", "streaming", "complete"]
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


# -- the feed's phases --


def test_phases_open_ending_gone_while_paused() -> None:
    server = Server(FAST, stall_timeout=1000.0)
    c = server.get("/p?progress")
    [feed] = server.observer._groups["p"].feeds  # noqa: SLF001
    assert feed.phase is Phase.OPEN
    server.registry.streaming("p", server.clock)
    c.pause()
    server.registry.finish("p", server.clock)
    assert feed.phase is Phase.ENDING  # the last event is queued, not written
    written = len(c.raw)
    feed.send((10**18, "state", b"late"))  # nothing is taken any more
    feed.progress((10**18 + 1, "progress", b"late"))
    assert feed.queued == 2 and len(c.raw) == written
    c.resume()
    assert feed.phase is Phase.GONE
    assert c.ended and b"late" not in c.raw
    assert server.observer.spectators_of("p") == 0


def test_a_lost_connection_is_gone_and_close_leaves_it_alone() -> None:
    server = Server(FAST)
    c = server.get("/p?progress")
    [feed] = server.observer._groups["p"].feeds  # noqa: SLF001
    c.close()
    assert feed.phase is Phase.GONE
    assert server.observer.spectators_of("p") == 0
    assert feed.finished.called
    feed.close()  # the request is over: nothing is written, nothing raises
    feed.abort("again")
    assert not c.ended
    assert server.clock.getDelayedCalls() == []
