"""The Watcher over real loopback sockets against a stand-in feed.

Its reconnect delay alone is in ``tests/unit/client/test_reconnect_delay.py``.
"""

from __future__ import annotations

import io

import pytest_twisted
from treq.client import HTTPClient
from twisted.internet import reactor
from twisted.web.client import Agent

from hoodypipe.client.display import JSONLinesDisplay
from hoodypipe.client.watch import (
    EXIT_COMPLETE,
    EXIT_FAILED,
    EXIT_UNREACHABLE,
    Watcher,
    WatchResult,
)
from tests.kit.service import free_port
from tests.kit.watchfeed import (
    DROP,
    HANG,
    Script,
    Serve,
    done,
    progress,
    state,
)


async def watch(url: str, **options: float) -> tuple[WatchResult, Watcher, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    watcher = Watcher(
        reactor,  # type: ignore[arg-type]
        HTTPClient(Agent(reactor)),  # type: ignore[arg-type, no-untyped-call]
        url, JSONLinesDisplay(out, err),
        **{"tries": 3, "delay": 0.05, "idle_timeout": 5.0, **options},  # type: ignore[arg-type]
    )
    d = watcher.run()
    d.addTimeout(20, reactor)  # type: ignore[arg-type]
    result = await d
    return result, watcher, out


def events(out: io.StringIO) -> list[str]:
    import json

    return [json.loads(line)["event"] for line in out.getvalue().splitlines()]


@pytest_twisted.ensureDeferred
async def test_complete_is_exit_0(serve: Serve) -> None:
    feed, url = serve([Script((state(1, "streaming"), progress(2, 500), done(3)))])
    result, watcher, out = await watch(url)
    assert result.code == EXIT_COMPLETE
    assert result.done is not None and result.done["transferId"] == "tid-1"
    assert events(out) == ["state", "progress", "done"]
    (seen,) = feed.seen
    assert seen.uri == "/api/v1/pipe/demo?progress"
    assert seen.accept == "text/event-stream"
    assert seen.last_event_id is None


@pytest_twisted.ensureDeferred
async def test_failed_is_exit_1(serve: Serve) -> None:
    feed, url = serve([Script((state(1, "streaming"), done(2, ok=False,
                                                              reason="Idle timeout")))])
    result, watcher, out = await watch(url)
    assert result.code == EXIT_FAILED
    assert result.done is not None and result.done["reason"] == "Idle timeout"


@pytest_twisted.ensureDeferred
async def test_survives_a_dropped_connection(serve: Serve) -> None:
    feed, url = serve([
        Script((state(1, "streaming", retry=50), progress(2, 100), progress(3, 200)),
               then=DROP),
        Script((state(4, "streaming"), progress(5, 900), done(6))),
    ])
    result, watcher, out = await watch(url, delay=5.0)
    assert result.code == EXIT_COMPLETE
    assert [s.last_event_id for s in feed.seen] == [None, "3"]
    assert watcher.retry_ms == 50  # the server's hint, not our 5 s default
    assert events(out) == ["state", "progress", "progress", "state", "progress", "done"]


@pytest_twisted.ensureDeferred
async def test_a_stream_the_server_ends_is_resumed(serve: Serve) -> None:
    feed, url = serve([
        Script((state(1, "waiting"),)),
        Script((state(2, "streaming"), done(3))),
    ])
    result, watcher, out = await watch(url)
    assert result.code == EXIT_COMPLETE
    assert [s.last_event_id for s in feed.seen] == [None, "1"]


@pytest_twisted.ensureDeferred
async def test_a_silent_stream_is_reconnected(serve: Serve) -> None:
    feed, url = serve([
        Script((state(1, "streaming"),), then=HANG),
        Script((done(2),)),
    ])
    result, watcher, out = await watch(url, idle_timeout=0.3)
    assert result.code == EXIT_COMPLETE
    assert len(feed.seen) == 2


@pytest_twisted.ensureDeferred
async def test_204_stops_cleanly_without_retrying(serve: Serve) -> None:
    feed, url = serve([Script(status=204)])
    result, watcher, out = await watch(url)
    assert result.code == EXIT_UNREACHABLE
    assert len(feed.seen) == 1


@pytest_twisted.ensureDeferred
async def test_4xx_is_not_retried(serve: Serve) -> None:
    feed, url = serve([Script(status=404)])
    result, watcher, out = await watch(url)
    assert result.code == EXIT_UNREACHABLE
    assert "HTTP 404" in result.why
    assert len(feed.seen) == 1


@pytest_twisted.ensureDeferred
async def test_5xx_is_retried_a_bounded_number_of_times(serve: Serve) -> None:
    feed, url = serve([Script(status=503)])
    result, watcher, out = await watch(url, tries=3)
    assert result.code == EXIT_UNREACHABLE
    assert len(feed.seen) == 3


@pytest_twisted.ensureDeferred
async def test_not_an_event_stream_is_exit_2(serve: Serve) -> None:
    feed, url = serve([Script((b"<html>",), content_type="text/html")])
    result, watcher, out = await watch(url)
    assert result.code == EXIT_UNREACHABLE
    assert "text/html" in result.why


@pytest_twisted.ensureDeferred
async def test_an_unreadable_done_is_exit_2(serve: Serve) -> None:
    feed, url = serve([Script((b"event: done\ndata: {oops\n\n",))])
    result, watcher, out = await watch(url)
    assert result.code == EXIT_UNREACHABLE
    assert len(feed.seen) == 1


@pytest_twisted.ensureDeferred
async def test_unreachable_is_exit_2_after_the_tries() -> None:
    url = f"http://127.0.0.1:{free_port()}/x"
    result, watcher, out = await watch(url, tries=3)
    assert result.code == EXIT_UNREACHABLE
    assert watcher.connections == 3
    assert "refused" in result.why.lower()


@pytest_twisted.ensureDeferred
async def test_events_reset_the_give_up_count(serve: Serve) -> None:
    # Four drops in a row, each after an event: never "3 fruitless tries".
    scripts = [Script((state(i, "streaming"),), then=DROP) for i in range(1, 5)]
    feed, url = serve([*scripts, Script((done(9),))])
    result, watcher, out = await watch(url, tries=2)
    assert result.code == EXIT_COMPLETE
    assert len(feed.seen) == 5
