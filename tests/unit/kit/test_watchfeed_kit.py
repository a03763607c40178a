"""The stand-in spectator feed's event blocks (tests/kit/watchfeed.py)."""

from __future__ import annotations

import json

from hoodypipe.client.sse import SSEParser
from tests.kit.watchfeed import done, progress, state


def test_blocks_are_valid_event_stream() -> None:
    parser = SSEParser()
    events = parser.feed(state(1, "waiting", retry=10) + progress(2, 5) + done(3))
    assert [(e.event, e.id) for e in events] == [
        ("state", "1"), ("progress", "2"), ("done", "3"),
    ]
    assert parser.retry_ms == 10
    assert json.loads(events[2].data)["ok"] is True
