"""
Pipe names and query parameters, checked against the raw request.

Names are read from the raw, still percent-encoded path so that an encoded
slash or a dot segment can be refused exactly as the contract says, and two
names are equal only when their bytes are.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

import attrs

from hoodypipe.core.errors import Refusal

API_PREFIX = b"/api/v1/pipe/"
MAX_NAME = 1024
RESERVED_API = {b"health", b"metrics"}

_SIZE = re.compile(r"([0-9]{1,19})([KMGT]i?)?")
_WHOLE = re.compile(r"[0-9]{1,9}")
_UNITS = {
    "": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}


def split_target(raw_path: bytes) -> tuple[bytes, bool]:
    """The name part of a request path, and whether it came under the API prefix."""
    if raw_path.startswith(API_PREFIX):
        return raw_path[len(API_PREFIX):], True
    return raw_path[1:], False


def validate_name(raw: bytes) -> str:
    """The pipe name for a raw path part, or a Refusal (414/400)."""
    if len(raw) > MAX_NAME:
        raise Refusal(414, f"Path too long (max {MAX_NAME} characters).", "bad_name")
    lowered = raw.lower()
    if b"%2f" in lowered or b"%5c" in lowered or b"\\" in raw:
        raise Refusal(400, "Encoded slashes and backslashes are not allowed in a name.",
                      "bad_name")
    for segment in raw.split(b"/"):
        if unquote_to_bytes(segment) in (b"", b".", b".."):
            raise Refusal(400, "Empty, '.' and '..' path segments are not allowed.",
                          "bad_name")
    decoded = unquote_to_bytes(raw)
    if any(byte < 0x20 or byte == 0x7F for byte in decoded):
        raise Refusal(400, "Control characters are not allowed in a name.", "bad_name")
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise Refusal(400, "A name must be percent-encoded ASCII.", "bad_name") from None


@attrs.frozen
class PartyParams:
    """What a sender or receiver asked for in its query string."""

    n: int
    wait: float
    size: int | None = None


def _one(args: dict[bytes, list[bytes]], key: bytes) -> str | None:
    values = args.get(key)
    if values is None:
        return None
    return values[-1].decode("latin-1")


def parse_party(
    args: dict[bytes, list[bytes]], default_wait: float, max_wait: float,
    max_receivers: int,
) -> PartyParams:
    """Parse ``?n``, ``?wait`` and ``?size``; anything malformed is a 400."""
    n = 1
    raw_n = _one(args, b"n")
    if raw_n is not None:
        if not _WHOLE.fullmatch(raw_n) or not 1 <= int(raw_n) <= max_receivers:
            raise Refusal(400, f"n must be a whole number from 1 to {max_receivers}.",
                          "bad_param")
        n = int(raw_n)
    wait = default_wait
    raw_wait = _one(args, b"wait")
    if raw_wait is not None:
        if not _WHOLE.fullmatch(raw_wait) or not 1 <= int(raw_wait) <= max_wait:
            raise Refusal(400, f"wait must be a whole number of seconds from 1 to "
                          f"{int(max_wait)}.", "bad_param")
        wait = float(raw_wait)
    size: int | None = None
    raw_size = _one(args, b"size")
    if raw_size is not None:
        match = _SIZE.fullmatch(raw_size)
        if match is None:
            raise Refusal(400, "size must be a byte count like 1048576, 10M or 2Gi.",
                          "bad_param")
        size = int(match.group(1)) * _UNITS[match.group(2) or ""]
    return PartyParams(n=n, wait=wait, size=size)
