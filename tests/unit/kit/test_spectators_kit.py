"""The in-memory spectator kit itself (tests/kit/spectators.py)."""

from __future__ import annotations

import json

from twisted.internet.task import Clock

from hoodypipe.core.events import IDLE, PipeStatus, TransferResult
from tests.kit.spectators import FakeRegistry, Server, dechunk, parse_events


def test_dechunk_partial_and_complete() -> None:
    assert dechunk(b"3\r\nabc\r\n2\r\nde") == (b"abc", False)
    assert dechunk(b"3\r\nabc\r\n0\r\n\r\n") == (b"abc", True)


def test_parse_events_counts_comments_and_fields() -> None:
    raw = b'retry: 5\nid: 7\nevent: state\ndata: {"a":1}\n\n: keepalive\n\nid: 8\n'
    events, comments = parse_events(raw)
    assert comments == 1
    assert [(e.id, e.event, e.data, e.retry) for e in events] == [
        (7, "state", {"a": 1}, 5)
    ]


def test_fake_registry_tells_observers_in_order() -> None:
    clock = Clock()
    registry = FakeRegistry()
    seen: list[str] = []

    class Recorder:
        def pipe_changed(self, status: PipeStatus) -> None:
            seen.append(status.state)

        def transfer_done(self, result: TransferResult) -> None:
            seen.append("done:" + result.state)

    registry.add_observer(Recorder())  # type: ignore[arg-type]
    registry.waiting("a", clock)
    registry.streaming("a", clock)
    registry.moved("a", 10)
    result = registry.finish("a", clock)
    assert seen == ["waiting", "streaming", "done:complete"]
    assert result.bytes == 10
    assert registry.status("a").state == IDLE


def test_server_round_trip_snapshot() -> None:
    server = Server()
    connection = server.get("/x?status")
    assert connection.code == 200
    assert json.loads(connection.body)["state"] == "idle"
