"""
Server-sent events framing (the WHATWG ``text/event-stream`` format).

Every event carries an ``id`` so a reconnecting EventSource tells us, in
``Last-Event-ID``, what it already has; the data is one compact JSON object
on one line, so a line-oriented reader (``curl -N | grep``) sees whole events.
"""

from __future__ import annotations

import json

from hoodypipe.common.wire import JSONObject

CONTENT_TYPE = b"text/event-stream"

#: EventSource's reconnection delay hint, in milliseconds: sent with the
#: first event of every stream.
RETRY_MS = 2000

#: Headers of every event stream: no caching and no proxy buffering (nginx
#: honours X-Accel-Buffering).  No Content-Encoding: a compressed stream
#: would sit in the compressor's buffer instead of reaching the watcher.
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"Content-Type", CONTENT_TYPE),
    (b"Cache-Control", b"no-cache"),
    (b"X-Accel-Buffering", b"no"),
    (b"Access-Control-Allow-Origin", b"*"),
    (b"X-Content-Type-Options", b"nosniff"),
)

#: A comment line: ignored by EventSource, but it keeps proxies and idle
#: timeouts from closing a quiet stream.
HEARTBEAT = b": keepalive\n\n"


def encode(
    event_id: int, event: str, data: JSONObject, retry_ms: int | None = None
) -> bytes:
    """One event block; ``retry_ms`` adds the reconnection-delay hint."""
    if "\n" in event or "\r" in event:
        raise ValueError("event names are one line")
    body = json.dumps(data, separators=(",", ":"), allow_nan=False)
    head = f"retry: {retry_ms}\n" if retry_ms is not None else ""
    return f"{head}id: {event_id}\nevent: {event}\ndata: {body}\n\n".encode()


def parse_last_event_id(value: bytes | None) -> int | None:
    """The numeric ``Last-Event-ID`` a reconnecting client sent, if any."""
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit() or len(text) > 30:
        return None
    return int(text)
