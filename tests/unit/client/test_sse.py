"""The watch client's event-stream parser: the WHATWG rules, split anywhere."""

from __future__ import annotations

import pytest

from hoodypipe.client.sse import FeedError, SSEEvent, SSEParser, parse_data


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


def test_parse_data_is_json_or_the_text() -> None:
    assert parse_data(SSEEvent("done", '{"ok":true}', "1")) == {"ok": True}
    assert parse_data(SSEEvent("message", "not json", None)) == "not json"
