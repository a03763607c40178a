"""
A pass-through reader of a chunked request body.

Twisted's own decoder copies every byte into a bytearray and out again. A
relay whose receivers also get a chunked response can forward the sender's
framing as it arrives instead: this scanner only walks the chunk headers to
count payload bytes and find the end, and hands on the very ``bytes`` object
that was read. Only rare reads are cut or rewritten: a size line split
across two reads or carrying extensions is re-emitted clean, and the
terminal chunk and trailers are dropped (the receivers' responses get their
own terminator). With ``decode=True`` it yields plain payload instead, for
receivers that cannot take chunked framing (HTTP/1.0). With a ``tap``
(``?sha256``) it still forwards the raw reads, and also shows the tap where
the payload lies in them, ``tap(read, start, size)``, so the payload can be
hashed without the framing and without a copy; without one the loop does
exactly what it did before.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_SIZE, _BODY, _CRLF, _TRAILER, _DONE = range(5)
MAX_LINE = 4096
MAX_TRAILERS = 64 * 1024
_HEX = frozenset(b"0123456789abcdefABCDEF")
# The common case in one C call, without slicing: the CRLF that ends a chunk
# and a plain size line for the next one.
_NEXT_CHUNK = re.compile(rb"\r\n([0-9a-fA-F]{1,16})\r\n").match
# A plain size line at the start of a read (a paced sender's reads often hold
# exactly one chunk); anything else takes the general path.
_SIZE_LINE = re.compile(rb"([0-9a-fA-F]{1,16})\r\n").match


class MalformedChunkedBody(ValueError):
    """The sender's chunked framing is broken."""


Tap = Callable[[bytes, int, int], None]


def _no_tap(data: bytes, start: int, size: int) -> None:
    """Never called: the scanner only taps when it was given a tap."""


class ChunkedScanner:
    """Feed it raw reads; it calls ``on_data(piece, payload_bytes)`` and ``on_end(rest)``."""

    def __init__(
        self,
        on_data: Callable[[bytes, int], None],
        on_end: Callable[[bytes], None],
        decode: bool = False,
        tap: Tap | None = None,
    ) -> None:
        if decode and tap is not None:
            raise ValueError("a tap sees raw reads; with decode, on_data has the payload")
        self._on_data = on_data
        self._on_end = on_end
        self._decode = decode
        # The body branch's common case in one flag: payload only counted.
        self._count_only = not decode and tap is None
        self._tap: Tap = tap if tap is not None else _no_tap
        self._state = _SIZE
        self._remaining = 0
        self._crlf_seen = 0
        self._held = b""
        self._trailer_bytes = 0

    def dataReceived(self, data: bytes) -> None:
        end = len(data)
        pos = 0
        forward_from = 0
        payload = 0
        decode = self._decode
        count_only = self._count_only
        while pos < end:
            state = self._state
            if state == _BODY:
                take = min(self._remaining, end - pos)
                if count_only:
                    payload += take
                elif decode:
                    self._on_data(data if take == end else data[pos:pos + take], take)
                else:
                    payload += take
                    self._tap(data, pos, take)
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    following = _NEXT_CHUNK(data, pos)
                    if following is not None:
                        size = int(following.group(1), 16)
                        if size:
                            pos = following.end()
                            self._remaining = size
                            continue
                    if data.startswith(b"\r\n", pos):
                        pos += 2
                        self._state = _SIZE
                        continue
                    self._state = _CRLF
                    self._crlf_seen = 0
            elif state == _CRLF:
                while self._crlf_seen < 2 and pos < end:
                    if data[pos] != b"\r\n"[self._crlf_seen]:
                        raise MalformedChunkedBody("chunk data not followed by CRLF")
                    pos += 1
                    self._crlf_seen += 1
                if self._crlf_seen == 2:
                    self._state = _SIZE
            elif state == _SIZE:
                if not self._held:
                    plain = _SIZE_LINE(data, pos)
                    if plain is not None:
                        size = int(plain.group(1), 16)
                        if size:
                            pos = plain.end()
                            self._state = _BODY
                            self._remaining = size
                            continue
                eol = data.find(b"\n", pos)
                if eol == -1:
                    if len(self._held) + end - pos > MAX_LINE:
                        raise MalformedChunkedBody("chunk size line too long")
                    if not decode and forward_from < pos:
                        self._on_data(data[forward_from:pos], payload)
                        payload = 0
                    self._held += data[pos:]
                    forward_from = pos = end
                    break
                if len(self._held) + eol + 1 - pos > MAX_LINE:
                    raise MalformedChunkedBody("chunk size line too long")
                line = self._held + data[pos:eol + 1] if self._held else data[pos:eol + 1]
                size, clean = self._parse_size(line)
                held, self._held = self._held, b""
                if not decode and (size == 0 or held or not clean):
                    if forward_from < pos:
                        self._on_data(data[forward_from:pos], payload)
                        payload = 0
                    if size:
                        self._on_data(b"%x\r\n" % size, 0)
                    forward_from = eol + 1
                pos = eol + 1
                if size == 0:
                    self._state = _TRAILER
                else:
                    self._state = _BODY
                    self._remaining = size
            elif state == _TRAILER:
                eol = data.find(b"\n", pos)
                if eol == -1:
                    self._held += data[pos:]
                    if self._trailer_bytes + len(self._held) > MAX_TRAILERS:
                        raise MalformedChunkedBody("trailers too long")
                    pos = end
                    break
                line = self._held + data[pos:eol + 1]
                self._held = b""
                self._trailer_bytes += len(line)
                if self._trailer_bytes > MAX_TRAILERS:
                    raise MalformedChunkedBody("trailers too long")
                pos = eol + 1
                if line in (b"\r\n", b"\n"):
                    self._state = _DONE
                    if not decode and payload:
                        self._on_data(b"", payload)
                    self._on_end(data[pos:])
                    return
            else:
                raise MalformedChunkedBody("data after the end of the body")
        if not decode and self._state not in (_TRAILER, _DONE):
            if forward_from == 0:
                self._on_data(data, payload)
            elif forward_from < end:
                self._on_data(data[forward_from:], payload)
            elif payload:
                self._on_data(b"", payload)
        elif not decode and payload:
            self._on_data(b"", payload)

    @staticmethod
    def _parse_size(line: bytes) -> tuple[int, bool]:
        """The chunk size of one size line, and whether the line is plain ``hex CRLF``."""
        if not line.endswith(b"\r\n"):
            raise MalformedChunkedBody("chunk size line not ended by CRLF")
        text = line[:-2]
        clean = True
        semicolon = text.find(b";")
        if semicolon != -1:
            text = text[:semicolon].rstrip(b" \t")
            clean = False
        if not text or len(text) > 16 or not _HEX.issuperset(text):
            raise MalformedChunkedBody("chunk size is not a hex number")
        return int(text, 16), clean
