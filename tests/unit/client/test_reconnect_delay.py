"""The Watcher's reconnect delay, computed without a connection."""

from __future__ import annotations

import io

from twisted.internet import reactor

from hoodypipe.client.display import JSONLinesDisplay
from hoodypipe.client.watch import Watcher
from tests.kit.watchfeed import block


def test_reconnect_delay_doubles_from_the_hint_up_to_the_cap() -> None:
    watcher = Watcher(
        reactor, None, "http://h/x", JSONLinesDisplay(io.StringIO(), io.StringIO()),  # type: ignore[arg-type]
        delay=1.0, max_delay=5.0,
    )
    assert [watcher.reconnect_delay(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    watcher.retry_ms = 250
    assert [watcher.reconnect_delay(n) for n in (1, 2, 3)] == [0.25, 0.5, 1.0]
    assert block(1, "x", {}) == b"id: 1\nevent: x\ndata: {}\n\n"
