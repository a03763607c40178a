"""ChunkedScanner: pass-through chunked bodies, whatever the read boundaries.

Each body is encoded in several chunked styles and fed to the scanner cut at
every single split point (small encodings) and at many seeded random points.
In raw mode what the scanner forwards must itself be a clean chunked
encoding of exactly the payload, without the terminal chunk, and the payload
counts it reports must match the payload it has forwarded so far; in decode
mode the pieces are the payload itself.
"""

from __future__ import annotations

import pytest

from hoodypipe.bytepath.chunked import (
    MAX_LINE,
    MAX_TRAILERS,
    ChunkedScanner,
    MalformedChunkedBody,
)
from tests.kit.chunked import (
    BODIES,
    PIPELINED,
    SMALL,
    STYLES,
    Style,
    check,
    decode_reference,
    encode,
    every_split,
    feed,
    payload_in,
    random_splits,
)


def test_reference_decoder_is_strict() -> None:
    assert decode_reference(b"5\r\nhello\r\nA\r\n0123456789\r\n") == b"hello0123456789"
    assert payload_in(b"5\r\nhello\r\n", complete=True) == 5
    assert payload_in(b"5\r\nhel", complete=False) == 3
    assert payload_in(b"5\r\nhello\r", complete=False) == 5
    for bad in (b"5;x=1\r\nhello\r\n", b"0\r\n\r\n", b"5\r\nhelloXX",
                b"5\r\nhello\r\n0\r\n", b"5\r\nhel", b"5 \r\nhello\r\n"):
        with pytest.raises(AssertionError):
            payload_in(bad, complete=True)


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
