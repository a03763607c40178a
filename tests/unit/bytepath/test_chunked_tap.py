"""ChunkedScanner with a tap (``?sha256``): the payload's place in each raw read.

The tap must see exactly the payload, in order, as slices of the very reads
the scanner was given (no copies), at every read boundary, while what is
forwarded stays byte for byte what the scanner forwards without a tap.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from hoodypipe.bytepath.chunked import ChunkedScanner
from tests.kit.chunked import (
    BODIES,
    PIPELINED,
    SMALL,
    STYLES,
    Style,
    encode,
    every_split,
    random_splits,
)


def scan(reads: Iterable[bytes], tapped: bool) -> tuple[list[tuple[bytes, int]], bytes]:
    """What is forwarded (piece, payload count), and what the tap saw."""
    forwarded: list[tuple[bytes, int]] = []
    seen = bytearray()
    given: list[bytes] = []
    ended: list[bytes] = []

    def tap(data: bytes, start: int, size: int) -> None:
        assert data is given[-1], "the tap got a copy, not the read being scanned"
        assert size > 0 and 0 <= start and start + size <= len(data)
        seen.extend(memoryview(data)[start:start + size])

    scanner = ChunkedScanner(lambda piece, n: forwarded.append((piece, n)), ended.append,
                             tap=tap if tapped else None)
    for read in reads:
        if ended:
            break
        given.append(read)
        scanner.dataReceived(read)
    assert len(ended) == 1
    return forwarded, bytes(seen)


CASES = [(body, style) for body in BODIES for style in STYLES]


@pytest.mark.parametrize(("body", "style"), CASES, ids=[f"{b}-{s.name}" for b, s in CASES])
def test_the_tap_sees_the_payload_and_changes_nothing_forwarded(
    body: str, style: Style
) -> None:
    payload = b"".join(BODIES[body])
    encoded = encode(BODIES[body], style) + PIPELINED
    splits = list(random_splits(encoded, seed=len(encoded), runs=30, cuts=5))
    if body in SMALL and len(encoded) < 1500:
        splits += list(every_split(encoded))
    for reads in [[encoded], *splits]:
        plain, nothing = scan(reads, tapped=False)
        forwarded, seen = scan(reads, tapped=True)
        assert nothing == b""
        assert seen == payload
        assert forwarded == plain


def test_a_tap_and_decoding_do_not_go_together() -> None:
    with pytest.raises(ValueError):
        ChunkedScanner(lambda piece, n: None, lambda rest: None, decode=True,
                       tap=lambda data, start, size: None)
