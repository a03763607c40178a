"""
Reading a ``text/event-stream``: bytes in, dispatched events out.

Written from the WHATWG rules rather than taken from a library because the
watcher needs two things few parsers give: the ``id`` carried across
connections (sent back as ``Last-Event-ID``) and a bound on a line, so a
server that never ends a line cannot grow our memory.
"""

from __future__ import annotations

import codecs
import json
from typing import Any

import attrs

MAX_LINE = 1 << 20
"""Longest SSE line we accept; the server's are a few hundred bytes."""


class FeedError(Exception):
    """The feed cannot be read as an event stream; retrying will not help."""


@attrs.frozen
class SSEEvent:
    event: str
    data: str
    id: str | None


def parse_data(event: SSEEvent) -> Any:
    """The event's data as JSON, or the raw text when it is not JSON."""
    try:
        return json.loads(event.data)
    except ValueError:
        return event.data


class SSEParser:
    """
    Bytes of a ``text/event-stream`` in, dispatched events out, following the
    WHATWG rules: any of CRLF, LF or CR ends a line; a leading BOM is
    dropped; ``:`` lines are comments; one optional space after the colon is
    stripped; ``data`` lines join with newlines; a blank line dispatches; an
    event without data is not dispatched; ``id`` persists (and is carried to
    the next connection as ``Last-Event-ID``); ``retry`` takes digits only;
    an unfinished event at the end of the stream is discarded.
    """

    def __init__(self, last_event_id: str | None = None, max_line: int = MAX_LINE):
        self.last_event_id = last_event_id
        self.retry_ms: int | None = None
        self._max_line = max_line
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._buffer = ""
        self._started = False
        self._after_cr = False
        self._event = ""
        self._data: list[str] = []
        self._id_buffer = last_event_id

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        text = self._decoder.decode(chunk)
        if not self._started and text:
            self._started = True
            if text.startswith("\ufeff"):
                text = text[1:]
        if self._after_cr and text.startswith("\n"):
            text = text[1:]
        self._after_cr = False
        self._buffer += text
        events: list[SSEEvent] = []
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                break
            line, ending = self._buffer[:cut], self._buffer[cut]
            rest = cut + 1
            if ending == "\r":
                if rest < len(self._buffer):
                    if self._buffer[rest] == "\n":
                        rest += 1
                else:
                    self._after_cr = True
            self._buffer = self._buffer[rest:]
            event = self._line(line)
            if event is not None:
                events.append(event)
        if len(self._buffer) > self._max_line:
            raise FeedError(f"an event-stream line is longer than {self._max_line}")
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "event":
            self._event = value
        elif field == "data":
            self._data.append(value)
        elif field == "id":
            if "\0" not in value:
                self._id_buffer = value
        elif field == "retry":
            if value.isascii() and value.isdigit():
                self.retry_ms = int(value)
        return None

    def _dispatch(self) -> SSEEvent | None:
        self.last_event_id = self._id_buffer
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return SSEEvent(event or "message", "\n".join(data), self.last_event_id)


def _line_end(text: str) -> int | None:
    lf = text.find("\n")
    cr = text.find("\r")
    ends = [i for i in (lf, cr) if i >= 0]
    return min(ends) if ends else None
