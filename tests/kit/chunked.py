"""
Chunked bodies for the scanner's tests: the bodies, the encodings in several
styles, a strict reference decoder, and ways to cut a stream into reads.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Iterator

import attrs

from hoodypipe.bytepath.chunked import ChunkedScanner

PIPELINED = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"

# -- a reference encoder and decoder ------------------------------------------


@attrs.frozen
class Style:
    name: str
    extensions: bool = False
    upper: bool = False
    zeros: int = 0
    trailers: tuple[bytes, ...] = ()
    terminal_extension: bool = False


STYLES = [
    Style("plain"),
    Style("extensions", extensions=True),
    Style("upper", upper=True),
    Style("zeros", zeros=3),
    Style("trailers", trailers=(b"X-Checksum: abc", b"X-Other:  two words")),
    Style("terminal-extension", terminal_extension=True),
    Style("everything", extensions=True, upper=True, zeros=2,
          trailers=(b"Expires: never",), terminal_extension=True),
]


def encode(chunks: Iterable[bytes], style: Style) -> bytes:
    out = []
    for i, chunk in enumerate(chunks):
        assert chunk, "a chunk of size 0 is the terminal chunk"
        size = b"%X" % len(chunk) if style.upper else b"%x" % len(chunk)
        out.append(b"0" * style.zeros + size)
        if style.extensions:
            out.append(b";name=value" if i % 2 else b' ; q="quoted;value" ;flag')
        out.append(b"\r\n" + chunk + b"\r\n")
    out.append(b"0" * (style.zeros + 1))
    if style.terminal_extension:
        out.append(b";last=yes")
    out.append(b"\r\n")
    for trailer in style.trailers:
        out.append(trailer + b"\r\n")
    out.append(b"\r\n")
    return b"".join(out)


_SIZE_LINE = re.compile(rb"([0-9a-fA-F]+)\r\n")


class Framing:
    """Follows a forwarded stream piece by piece, checking its framing.

    The stream must be chunks with plain ``hex CRLF`` size lines: no
    extensions, no terminal chunk, no trailers. ``payload`` counts the chunk
    data seen so far.
    """

    def __init__(self) -> None:
        self.payload = 0
        self._line = b""
        self._remaining = 0
        self._crlf = 0

    def feed(self, data: bytes) -> None:
        pos = 0
        while pos < len(data):
            if self._remaining:
                take = min(self._remaining, len(data) - pos)
                self.payload += take
                self._remaining -= take
                pos += take
                if not self._remaining:
                    self._crlf = 2
            elif self._crlf:
                expected = b"\r\n"[2 - self._crlf]
                assert data[pos] == expected, f"no CRLF after chunk data: {data[pos]}"
                self._crlf -= 1
                pos += 1
            else:
                self._line += data[pos:pos + 1]
                pos += 1
                if self._line.endswith(b"\n"):
                    match = _SIZE_LINE.fullmatch(self._line)
                    assert match is not None, f"not a clean size line: {self._line!r}"
                    size = int(match.group(1), 16)
                    assert size > 0, "the terminal chunk must not be forwarded"
                    self._remaining = size
                    self._line = b""
                else:
                    assert len(self._line) <= 20, self._line

    def complete(self) -> bool:
        return not (self._line or self._remaining or self._crlf)


def payload_in(forwarded: bytes, *, complete: bool) -> int:
    framing = Framing()
    framing.feed(forwarded)
    if complete:
        assert framing.complete(), "the stream ends inside a chunk"
    return framing.payload


def decode_reference(forwarded: bytes) -> bytes:
    """The payload of a complete forwarded stream (no terminal chunk)."""
    assert payload_in(forwarded, complete=True) >= 0
    out = []
    pos = 0
    while pos < len(forwarded):
        match = _SIZE_LINE.match(forwarded, pos)
        assert match is not None
        size = int(match.group(1), 16)
        out.append(forwarded[match.end():match.end() + size])
        pos = match.end() + size + 2
    return b"".join(out)


# -- the bodies ---------------------------------------------------------------


def _many(seed: int) -> list[bytes]:
    rng = random.Random(seed)
    sizes = [1, 9, 10, 15, 16, 17, 171, 255, 256, 4095, 4096, 4097]
    sizes += [rng.randrange(1, 3000) for _ in range(20)]
    return [rng.randbytes(size) for size in sizes]


BODIES: dict[str, list[bytes]] = {
    "empty": [],
    "one": [b"hello, chunked world\r\n0\r\n\r\n (looks like framing, is payload)"],
    "many": _many(1),
    "bytes": [bytes([i]) for i in range(200)],
    "64KiB": [bytes([i]) * 65536 for i in range(3)],
}
SMALL = ["empty", "one", "bytes"]


@attrs.define
class Run:
    pieces: list[tuple[bytes, int]] = attrs.Factory(list)
    ends: list[bytes] = attrs.Factory(list)
    after: list[bytes] = attrs.Factory(list)
    framing: Framing = attrs.Factory(Framing)
    counted_so_far: int = 0


def feed(reads: Iterable[bytes], decode: bool = False) -> Run:
    """Feed reads as a channel would: after on_end the rest is not the body's."""
    run = Run()

    def on_data(piece: bytes, payload: int) -> None:
        assert not run.ends, "data after on_end"
        assert payload >= 0
        run.pieces.append((piece, payload))
        if decode:
            assert payload == len(piece)
            return
        run.framing.feed(piece)
        run.counted_so_far += payload
        # The count always says exactly how much payload was forwarded.
        assert run.framing.payload == run.counted_so_far

    scanner = ChunkedScanner(on_data, run.ends.append, decode=decode)
    for data in reads:
        if run.ends:
            run.after.append(data)
        else:
            scanner.dataReceived(data)
    return run


def check(run: Run, payload: bytes, decode: bool) -> None:
    assert len(run.ends) == 1, "on_end must be called exactly once"
    assert run.ends[0] + b"".join(run.after) == PIPELINED
    forwarded = b"".join(piece for piece, _ in run.pieces)
    counted = sum(count for _, count in run.pieces)
    assert counted == len(payload)
    if decode:
        assert forwarded == payload
    else:
        assert run.framing.complete()
        assert decode_reference(forwarded) == payload


def every_split(data: bytes) -> Iterator[list[bytes]]:
    for i in range(len(data) + 1):
        yield [data[:i], data[i:]]


def random_splits(data: bytes, seed: int, runs: int, cuts: int) -> Iterator[list[bytes]]:
    rng = random.Random(seed)
    for _ in range(runs):
        points = sorted(rng.randrange(len(data) + 1) for _ in range(cuts))
        bounds = [0, *points, len(data)]
        yield [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
