"""ChunkedScanner: pass-through chunked bodies, whatever the read boundaries.

Each body is encoded in several chunked styles and fed to the scanner cut at
every single split point (small encodings) and at many seeded random points.
In raw mode what the scanner forwards must itself be a clean chunked
encoding of exactly the payload, without the terminal chunk, and the payload
counts it reports must match the payload it has forwarded so far; in decode
mode the pieces are the payload itself.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Iterator

import attrs
import pytest

from hoodypipe.bytepath.chunked import (
    MAX_LINE,
    MAX_TRAILERS,
    ChunkedScanner,
    MalformedChunkedBody,
)

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


def test_reference_decoder_is_strict() -> None:
    assert decode_reference(b"5\r\nhello\r\nA\r\n0123456789\r\n") == b"hello0123456789"
    assert payload_in(b"5\r\nhello\r\n", complete=True) == 5
    assert payload_in(b"5\r\nhel", complete=False) == 3
    assert payload_in(b"5\r\nhello\r", complete=False) == 5
    for bad in (b"5;x=1\r\nhello\r\n", b"0\r\n\r\n", b"5\r\nhelloXX",
                b"5\r\nhello\r\n0\r\n", b"5\r\nhel", b"5 \r\nhello\r\n"):
        with pytest.raises(AssertionError):
            payload_in(bad, complete=True)


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


CASES = [(body, style) for body in BODIES for style in STYLES]


@pytest.mark.parametrize("decode", [False, True], ids=["raw", "decode"])
@pytest.mark.parametrize(("body", "style"), CASES,
                         ids=[f"{b}-{s.name}" for b, s in CASES])
def test_random_splits(body: str, style: Style, decode: bool) -> None:
    chunks = BODIES[body]
    payload = b"".join(chunks)
    encoded = encode(chunks, style) + PIPELINED
    check(feed([encoded], decode), payload, decode)
    runs = 40 if len(encoded) > 100_000 else 200
    for cuts in (1, 3, 20):
        for reads in random_splits(encoded, seed=len(encoded) + cuts, runs=runs,
                                   cuts=cuts):
            check(feed(reads, decode), payload, decode)


@pytest.mark.parametrize("decode", [False, True], ids=["raw", "decode"])
@pytest.mark.parametrize("style", STYLES, ids=[s.name for s in STYLES])
@pytest.mark.parametrize("body", SMALL)
def test_every_single_split_point(body: str, style: Style, decode: bool) -> None:
    chunks = BODIES[body][:64]  # every split of 64 one-byte chunks is plenty
    payload = b"".join(chunks)
    encoded = encode(chunks, style) + PIPELINED
    for reads in every_split(encoded):
        check(feed(reads, decode), payload, decode)


@pytest.mark.parametrize("decode", [False, True], ids=["raw", "decode"])
@pytest.mark.parametrize("style", STYLES, ids=[s.name for s in STYLES])
def test_one_byte_at_a_time(style: Style, decode: bool) -> None:
    chunks = BODIES["many"][:12]
    payload = b"".join(chunks)
    encoded = encode(chunks, style) + PIPELINED
    check(feed([encoded[i:i + 1] for i in range(len(encoded))], decode), payload,
          decode)


def test_the_extension_is_dropped_and_the_size_line_rewritten() -> None:
    run = feed([b"5;a=b\r\nhello\r\n0a ; x\r\n0123456789\r\n0\r\n\r\n" + PIPELINED])
    assert b"".join(p for p, _ in run.pieces) == b"5\r\nhello\r\na\r\n0123456789\r\n"
    assert run.ends == [PIPELINED]


def test_terminal_chunk_and_trailers_are_not_forwarded() -> None:
    run = feed([b"3\r\nabc\r\n0\r\nX-A: 1\r\nX-B: 2\r\n\r\n"])
    assert b"".join(p for p, _ in run.pieces) == b"3\r\nabc\r\n"
    assert run.ends == [b""]


def test_body_then_nothing_calls_on_end_with_empty_rest() -> None:
    run = feed([b"0\r\n\r\n"])
    assert run.pieces == []
    assert run.ends == [b""]


def test_no_on_end_before_the_last_crlf() -> None:
    run = feed([b"3\r\nabc\r\n0\r\nX-A: 1\r\n"])
    assert run.ends == []
    run = feed([b"3\r\nabc\r\n0\r\n\r"])
    assert run.ends == []


# -- the common case forwards the very same object ------------------------------


def test_a_read_of_complete_clean_chunks_is_forwarded_as_is() -> None:
    seen: list[tuple[bytes, int]] = []
    scanner = ChunkedScanner(lambda d, n: seen.append((d, n)), lambda rest: None)
    first = b"5\r\nhello\r\nB\r\n, world and\r\n"
    second = b"1\r\n!\r\n" + b"4000\r\n" + bytes(16384) + b"\r\n"
    scanner.dataReceived(first)
    scanner.dataReceived(second)
    assert len(seen) == 2
    assert seen[0][0] is first and seen[0][1] == 16
    assert seen[1][0] is second and seen[1][1] == 16385


def test_a_read_inside_one_chunk_is_forwarded_as_is() -> None:
    seen: list[tuple[bytes, int]] = []
    scanner = ChunkedScanner(lambda d, n: seen.append((d, n)), lambda rest: None)
    head = b"10000\r\n" + bytes(1000)
    middle = bytes(60000)
    tail = bytes(65536 - 61000) + b"\r\n"
    for read in (head, middle, tail):
        scanner.dataReceived(read)
    assert len(seen) == 3
    assert all(d is r for (d, _), r in zip(seen, (head, middle, tail), strict=True))
    assert [n for _, n in seen] == [1000, 60000, 4536]


def test_decode_mode_hands_on_a_whole_read_of_payload_as_is() -> None:
    seen: list[bytes] = []
    scanner = ChunkedScanner(lambda d, n: seen.append(d), lambda rest: None,
                             decode=True)
    scanner.dataReceived(b"8000\r\n")
    payload = bytes(range(256)) * 128
    scanner.dataReceived(payload)
    assert len(seen) == 1 and seen[0] is payload


# -- malformed bodies ------------------------------------------------------------


def _broken(*reads: bytes, decode: bool = False) -> str:
    scanner = ChunkedScanner(lambda d, n: None, lambda rest: None, decode=decode)
    with pytest.raises(MalformedChunkedBody) as info:
        for read in reads:
            scanner.dataReceived(read)
    return str(info.value)


@pytest.mark.parametrize("decode", [False, True], ids=["raw", "decode"])
@pytest.mark.parametrize("line", [
    b"zz\r\n", b"0x5\r\n", b"-5\r\n", b"+5\r\n", b"\r\n", b";ext\r\n", b"5 \r\n",
    b" 5\r\n", b"5_0\r\n", b"1" * 17 + b"\r\n",
])
def test_non_hex_size_is_refused(line: bytes, decode: bool) -> None:
    assert _broken(line + b"x" * 5, decode=decode) == "chunk size is not a hex number"


@pytest.mark.parametrize("decode", [False, True], ids=["raw", "decode"])
def test_size_line_ended_by_bare_lf_is_refused(decode: bool) -> None:
    assert _broken(b"5\nhello\r\n", decode=decode) == (
        "chunk size line not ended by CRLF")


@pytest.mark.parametrize("decode", [False, True], ids=["raw", "decode"])
@pytest.mark.parametrize("after", [b"XX", b"\rX", b"\n\r", b"hello"])
def test_missing_crlf_after_data_is_refused(after: bytes, decode: bool) -> None:
    assert _broken(b"5\r\nhello" + after, decode=decode) == (
        "chunk data not followed by CRLF")
    # The same when the bad byte comes in a read of its own.
    assert _broken(b"5\r\nhello", after[:1], after[1:], decode=decode) == (
        "chunk data not followed by CRLF")


@pytest.mark.parametrize("decode", [False, True], ids=["raw", "decode"])
def test_too_long_size_line_is_refused(decode: bool) -> None:
    assert _broken(b"1" * (MAX_LINE + 1), decode=decode) == "chunk size line too long"
    reads = [b"5\r\nhello\r\n5;"] + [b"x" * 1000] * 5
    assert _broken(*reads, decode=decode) == "chunk size line too long"


def test_size_line_up_to_the_limit_split_across_reads_is_accepted() -> None:
    line = b"5;" + b"x" * (MAX_LINE - 4) + b"\r\n"
    assert len(line) == MAX_LINE
    reads = [line[:1000], line[1000:3000], line[3000:-1], line[-1:],
             b"hello\r\n0\r\n\r\n"]
    run = feed(reads)
    assert b"".join(p for p, _ in run.pieces) == b"5\r\nhello\r\n"
    assert run.ends == [b""]


# Regression (fixed in 7993d3f): the limit held only for a line split across
# reads, so acceptance depended on TCP segmentation.
@pytest.mark.parametrize("decode", [False, True], ids=["raw", "decode"])
def test_too_long_size_line_in_one_read_is_refused_too(decode: bool) -> None:
    line = b"5;" + b"x" * MAX_LINE + b"\r\n"
    assert _broken(line + b"hello\r\n", decode=decode) == "chunk size line too long"


@pytest.mark.parametrize("decode", [False, True], ids=["raw", "decode"])
def test_too_long_trailers_are_refused(decode: bool) -> None:
    big = b"X-Big: " + b"a" * MAX_TRAILERS + b"\r\n\r\n"
    assert _broken(b"3\r\nabc\r\n0\r\n" + big, decode=decode) == "trailers too long"
    lines = b"".join(b"X-%d: %s\r\n" % (i, b"v" * 100) for i in range(700))
    assert _broken(b"0\r\n" + lines + b"\r\n", decode=decode) == "trailers too long"
    # ...and when they trickle in without an end of line.
    reads = [b"0\r\nX-Big: "] + [b"a" * 8192] * 9
    assert _broken(*reads, decode=decode) == "trailers too long"


@pytest.mark.parametrize("decode", [False, True], ids=["raw", "decode"])
def test_trailers_under_the_limit_in_one_read_are_accepted(decode: bool) -> None:
    trailer = b"X-Big: " + b"a" * 50_000 + b"\r\n"
    run = feed([b"3\r\nabc\r\n0\r\n" + trailer + b"\r\n" + PIPELINED], decode=decode)
    assert run.ends == [PIPELINED]


# Regression (fixed in 7993d3f): a held trailer line was counted twice.
@pytest.mark.parametrize("decode", [False, True], ids=["raw", "decode"])
def test_trailers_under_the_limit_split_across_reads_are_accepted(decode: bool) -> None:
    trailer = b"X-Big: " + b"a" * 50_000 + b"\r\n"
    body = b"3\r\nabc\r\n0\r\n" + trailer + b"\r\n" + PIPELINED
    cut = len(b"3\r\nabc\r\n0\r\n") + 30_000
    run = feed([body[:cut], body[cut:]], decode=decode)
    assert run.ends == [PIPELINED]


@pytest.mark.parametrize("decode", [False, True], ids=["raw", "decode"])
def test_data_after_the_end_is_refused(decode: bool) -> None:
    assert _broken(b"3\r\nabc\r\n0\r\n\r\n", b"more", decode=decode) == (
        "data after the end of the body")


def test_empty_reads_change_nothing() -> None:
    run = feed([b"", b"3\r\n", b"", b"abc", b"", b"\r\n0\r\n", b"", b"\r\n", b""])
    assert b"".join(p for p, _ in run.pieces) == b"3\r\nabc\r\n"
    assert sum(n for _, n in run.pieces) == 3
    assert run.ends == [b""]
