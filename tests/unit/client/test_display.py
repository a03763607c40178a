"""What the watch client shows: JSON lines, plain lines, a live terminal line."""

from __future__ import annotations

import io
import json

from hoodypipe.client.display import (
    JSONLinesDisplay,
    PlainDisplay,
    TerminalDisplay,
    describe_progress,
)
from hoodypipe.client.sse import SSEEvent


def test_json_lines_display() -> None:
    out, err = io.StringIO(), io.StringIO()
    display = JSONLinesDisplay(out, err)
    display.event(SSEEvent("progress", '{"bytes":5}', "2"), {"bytes": 5})
    display.event(SSEEvent("message", "not json", None), "not json")
    display.notice("reconnecting")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines == [
        {"event": "progress", "data": {"bytes": 5}},
        {"event": "message", "data": "not json"},
    ]
    assert "reconnecting" in err.getvalue()


def test_plain_display_prints_state_changes_and_the_outcome() -> None:
    out, err = io.StringIO(), io.StringIO()
    display = PlainDisplay(out, err, "p")
    state = {"state": "waiting", "hasSender": True, "receivers": 0,
             "totalReceivers": 1}
    display.event(SSEEvent("state", "", "1"), state)
    display.event(SSEEvent("state", "", "2"), state)
    display.event(SSEEvent("progress", "", "3"), {"bytes": 1})
    display.done("p", {"state": "complete", "ok": True, "bytes": 2000,
                       "durationSec": 3})
    assert out.getvalue().splitlines() == [
        "p: waiting (sender connected, receivers 0/1)",
        "transfer p complete, 2.0 kB in 3.0s",
    ]


def test_terminal_display_redraws_one_line() -> None:
    out, err = io.StringIO(), io.StringIO()
    display = TerminalDisplay(out, err, "p", width=lambda: 200)
    display.event(SSEEvent("progress", "", "1"), {
        "bytes": 500_000_000, "totalBytes": 1_000_000_000, "percent": 50.0,
        "mbps": 120.5, "etaSec": 4.2, "elapsedSec": 4.1,
    })
    display.notice("dropped")
    display.done("p", {"state": "failed", "ok": False, "reason": "Idle timeout",
                       "bytes": 1, "durationSec": 1})
    text = out.getvalue()
    assert text.startswith("\r\x1b[Kp: 500.0 MB / 1.0 GB   50.0%  120.5 MB/s  ETA 4.2s")
    assert text.count("\r\x1b[Kp: 500.0 MB") == 2  # redrawn after the notice
    assert text.endswith("transfer p failed: Idle timeout (1 B in 1.0s)\n")
    assert "dropped" in err.getvalue()


def test_terminal_line_fits_the_width() -> None:
    out = io.StringIO()
    display = TerminalDisplay(out, io.StringIO(), "n" * 300, width=lambda: 40)
    display.event(SSEEvent("state", "", "1"), {"state": "streaming"})
    assert len(out.getvalue().removeprefix("\r\x1b[K")) == 39


def test_describe_progress_without_total() -> None:
    line = describe_progress("p", {"bytes": 1500, "totalBytes": None, "percent": None,
                                   "mbps": 0.0, "etaSec": None, "elapsedSec": 12})
    assert line == "p: 1.5 kB  0 B/s  elapsed 12s"
