"""
Multipart form uploads: the one part of a ``multipart/form-data`` send that
reaches the receivers.

A browser form, ``curl -F`` or ``FormData`` wraps the file in a multipart
body; receivers want the file. ``FirstPartReader`` feeds the decoded body to
the ``multipart`` package's incremental push parser (the parser treq and
Klein's stack already install, strict about framing and bounded in what it
keeps: a header line, or a boundary's length of body) and passes on only the
first part that carries a non-empty filename, as it arrives. Fields before it
are dropped as they are read; a form without a file forwards its first
``text`` field instead, held (at most 1 MiB) until the body ends, which is
how ``/noscript`` sends text. Once the forwarded part ends the reader stops:
what follows is dropped unchecked.

Why not hand-written: the framing rules (a delimiter split across reads, a
CR that may or may not start one, header continuation, preamble) are where
hand-written parsers go wrong, and this parser is small, maintained and has
no dependencies of its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import attrs
from multipart import MultipartError, MultipartSegment, PushMultipartParser

from hoodypipe.core.errors import Refusal

MALFORMED = "Malformed multipart body"
TEXT_FIELD = "text"
MAX_TEXT = 1024 * 1024
MAX_BOUNDARY = 70
HEAD_TIMEOUT = 30.0

_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = rb'"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\t\x20-\x7e\x80-\xff])*"'
_MEDIA = re.compile(rb"[ \t]*(" + _TOKEN + rb")/(" + _TOKEN + rb")[ \t]*")
_PARAM = re.compile(rb";[ \t]*(?:(" + _TOKEN + rb")=(" + _TOKEN + rb"|" + _QUOTED + rb"))?[ \t]*")
# RFC 2046: 1..70 of these, the last one not a space.
_BOUNDARY = re.compile(rb"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")


def form_boundary(content_type: bytes | None) -> bytes | None:
    """The boundary of a ``multipart/form-data`` send; None for any other send.

    A form without a usable boundary is refused at once (400): without one
    the body cannot be read at all.
    """
    if content_type is None:
        return None
    media = _MEDIA.match(content_type)
    if media is None or (media.group(1).lower(), media.group(2).lower()) != (
        b"multipart", b"form-data"
    ):
        return None
    boundary: bytes | None = None
    pos = media.end()
    while pos < len(content_type):
        param = _PARAM.match(content_type, pos)
        if param is None:
            boundary = None
            break
        pos = param.end()
        if param.group(1) is not None and param.group(1).lower() == b"boundary":
            value = param.group(2)
            if value.startswith(b'"'):
                value = re.sub(rb"\\(.)", rb"\1", value[1:-1])
            boundary = value
    if boundary is None or not _BOUNDARY.fullmatch(boundary):
        raise Refusal(400, f"A multipart/form-data body needs a boundary of 1 to "
                      f"{MAX_BOUNDARY} characters.", "bad_header")
    return boundary


@attrs.frozen
class PartHead:
    """What the receivers learn of the forwarded part before its bytes."""

    content_type: str | None
    filename: str | None
    text: bool = False


class FirstPartReader:
    """Reads a form body and passes on the part the receivers get.

    ``on_found`` when a part worth forwarding has begun (a file part, or the
    first ``text`` field); ``on_head`` once the receivers may be answered,
    then ``on_data`` for its bytes and ``on_end``; ``on_malformed`` instead
    when the body breaks, ends too early, or its text field is too big.
    """

    def __init__(
        self,
        boundary: bytes,
        on_found: Callable[[], None],
        on_head: Callable[[PartHead], None],
        on_data: Callable[[bytes, int], None],
        on_end: Callable[[], None],
        on_malformed: Callable[[], None],
    ) -> None:
        self._parser = PushMultipartParser(boundary)
        self._on_found = on_found
        self._on_head = on_head
        self._on_data = on_data
        self._on_end = on_end
        self._on_malformed = on_malformed
        self._forwarding = False
        self._done = False
        self._collecting = False
        self._text: list[bytes] | None = None
        self._text_size = 0

    def feed(self, data: bytes, payload: int = 0) -> None:
        """One read of the decoded body (the ``RequestBody`` data callback)."""
        if self._done:
            return
        try:
            for event in self._parser.parse(data):
                if isinstance(event, bytes):
                    if self._forwarding:
                        self._on_data(event, len(event))
                    elif self._collecting:
                        self._keep_text(event)
                elif event is None:
                    if self._forwarding:
                        self._done = True
                        self._on_end()
                    self._collecting = False
                else:
                    self._segment(event)
                if self._done:
                    return
        except MultipartError:
            self._malformed()

    def finish(self) -> None:
        """The body ended: forward the held text, or fail if nothing came."""
        if self._done:
            return
        try:
            self._parser.close()
        except MultipartError:
            self._malformed()
            return
        if self._text is None:
            self._malformed()
            return
        self._done = True
        text = b"".join(self._text)
        self._text = None
        self._on_head(PartHead(content_type=None, filename=None, text=True))
        if text:
            self._on_data(text, len(text))
        self._on_end()

    def stop(self) -> None:
        """Nothing more is wanted (the transfer ended some other way)."""
        self._done = True
        self._text = None

    def _segment(self, segment: MultipartSegment) -> None:
        if segment.filename:
            if self._text is None:
                self._on_found()
            self._text = None
            self._forwarding = True
            self._on_head(PartHead(content_type=segment.header("Content-Type"),
                                   filename=segment.filename))
        elif segment.name == TEXT_FIELD and self._text is None and segment.filename is None:
            self._text = []
            self._collecting = True
            self._on_found()

    def _keep_text(self, data: bytes) -> None:
        assert self._text is not None
        self._text_size += len(data)
        if self._text_size > MAX_TEXT:
            raise MultipartError("text field over 1 MiB")
        self._text.append(data)

    def _malformed(self) -> None:
        self._done = True
        self._text = None
        self._on_malformed()
