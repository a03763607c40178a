"""The watch client's pure parts: SSE parsing, URLs, displays."""

from __future__ import annotations

import io
import json

import pytest

from hoodypipe.client.watch import (
    FeedError,
    JSONLinesDisplay,
    PlainDisplay,
    SSEEvent,
    SSEParser,
    TerminalDisplay,
    describe_progress,
    feed_url,
    pipe_name,
    server_base,
)


def parse(*chunks: bytes) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    return events


def test_one_event() -> None:
    assert parse(b'id: 1\nevent: state\ndata: {"state":"idle"}\n\n') == [
        SSEEvent("state", '{"state":"idle"}', "1")
    ]


def test_default_type_is_message_and_multiline_data_joins() -> None:
    assert parse(b"data: a\ndata:b\ndata\n\n") == [SSEEvent("message", "a\nb\n", None)]


def test_comments_and_unknown_fields_are_ignored() -> None:
    assert parse(b": keepalive\n\n: x\nfoo: bar\ndata: d\n\n") == [
        SSEEvent("message", "d", None)
    ]


def test_all_line_endings() -> None:
    assert parse(b"data: a\r\n\r\ndata: b\r\rdata: c\n\n") == [
        SSEEvent("message", "a", None),
        SSEEvent("message", "b", None),
        SSEEvent("message", "c", None),
    ]


def test_split_anywhere_even_inside_crlf_and_utf8() -> None:
    whole = "id: 7\r\nevent: done\r\ndata: {\"n\":\"é✓\"}\r\n\r\n".encode()
    expected = [SSEEvent("done", '{"n":"é✓"}', "7")]
    for cut in range(1, len(whole)):
        assert parse(whole[:cut], whole[cut:]) == expected, cut
    assert parse(*[bytes([b]) for b in whole]) == expected


def test_bom_is_dropped_once() -> None:
    assert parse(b"\xef\xbb\xbfdata: x\n\n") == [SSEEvent("message", "x", None)]


def test_only_one_space_after_the_colon_is_stripped() -> None:
    assert parse(b"data:  two\n\n") == [SSEEvent("message", " two", None)]


def test_id_persists_and_events_without_data_are_not_dispatched() -> None:
    parser = SSEParser()
    assert parser.feed(b"id: 5\n\n") == []
    assert parser.last_event_id == "5"
    assert parser.feed(b"data: x\n\n") == [SSEEvent("message", "x", "5")]
    assert parser.feed(b"id\ndata: y\n\n") == [SSEEvent("message", "y", "")]


def test_id_with_nul_is_ignored() -> None:
    parser = SSEParser(last_event_id="3")
    assert parser.feed(b"id: a\0b\ndata: x\n\n") == [SSEEvent("message", "x", "3")]


def test_retry_digits_only() -> None:
    parser = SSEParser()
    parser.feed(b"retry: 1500\n\n")
    assert parser.retry_ms == 1500
    parser.feed(b"retry: 2s\n\nretry: -1\n\n")
    assert parser.retry_ms == 1500


def test_an_unfinished_event_is_not_dispatched() -> None:
    assert parse(b"data: x\n") == []


def test_a_line_without_end_is_bounded() -> None:
    parser = SSEParser(max_line=100)
    with pytest.raises(FeedError):
        parser.feed(b"data: " + b"x" * 200)


@pytest.mark.parametrize(
    ("url", "feed"),
    [
        ("http://h:8080/api/v1/pipe/x", "http://h:8080/api/v1/pipe/x?progress"),
        ("http://h/x?progress", "http://h/x?progress"),
        ("http://h/x?progress=1", "http://h/x?progress=1"),
        ("https://h/a%20b?n=2", "https://h/a%20b?n=2&progress"),
    ],
)
def test_feed_url(url: str, feed: str) -> None:
    assert feed_url(url) == feed


@pytest.mark.parametrize("bad", ["ftp://h/x", "h/x", "http:///x"])
def test_feed_url_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        feed_url(bad)


def test_names_and_bases() -> None:
    assert pipe_name("http://h/api/v1/pipe/a/b?progress") == "a/b"
    assert pipe_name("http://h/a%20b") == "a b"
    assert server_base("http://h:1/api/v1/pipe/a?progress") == "http://h:1"


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
