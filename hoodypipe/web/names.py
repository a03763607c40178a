"""
Pipe names and query parameters, checked against the raw request.

Names are read from the raw, still percent-encoded path so that an encoded
slash or a dot segment can be refused exactly as the contract says, and two
names are equal only when their bytes are.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import parse_qsl, unquote_to_bytes

import attrs

from hoodypipe.core.errors import Refusal

API_PREFIX = b"/api/v1/pipe/"
MAX_NAME = 1024
RESERVED_API = {b"health", b"metrics"}

#: The largest byte count anything on the path holds (a signed 64-bit count:
#: curl's curl_off_t, nginx's and the kernel's off_t); Content-Length obeys it too.
MAX_BYTES = 2**63 - 1
#: The parameters the relay reads: each may be given once.  A repeat is
#: ambiguous (parsers disagree on whether the first or the last counts), and
#: a cache or proxy in front may have read the other one.
KNOWN_PARAMS = (b"n", b"wait", b"size", b"progress", b"status", b"video", b"download",
                b"filename", b"sha256")

_SIZE = re.compile(r"([0-9]{1,19})([KMGT]i?)?")
_WHOLE = re.compile(r"[0-9]{1,9}")
_UNITS = {
    "": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}


# An http(s) URL whose authority is a host and an optional port (no userinfo:
# RFC 9110 section 4.2.4), then nothing or a path or a query.
_ABSOLUTE = re.compile(
    rb"https?://((?:[A-Za-z0-9\-._~%!$&'()*+,;=]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?)"
    rb"([/?].*)?",
    re.IGNORECASE | re.DOTALL)
_SCHEME = re.compile(rb"[A-Za-z][A-Za-z0-9+.\-]*://")
# RFC 9110 section 7.2: Host = uri-host [ ":" port ], possibly empty.
_HOST = re.compile(rb"(?:[A-Za-z0-9\-._~%!$&'()*+,;=]*|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?")


def parse_target(uri: bytes) -> tuple[bytes, bytes, bytes | None]:
    """The path, the query and (absolute-form only) the authority of a request target.

    RFC 9112 section 3.2.2: a server MUST accept the absolute-form
    (``GET http://host/a HTTP/1.1``), so it is served as its path ``/a``, and
    its authority replaces the Host header (section 3.2.2 again).  Any other
    target is returned as it is, for ``check_target`` to refuse.
    """
    absolute = _ABSOLUTE.fullmatch(uri)
    if absolute is not None:
        path, _, query = (absolute.group(2) or b"").partition(b"?")
        return path or b"/", query, absolute.group(1)
    path, _, query = uri.partition(b"?")
    return path, query, None


def check_target(path: bytes, method: bytes) -> None:
    """Refuse (400) a request whose target is no path, whatever it would route to.

    Without this, ``GET abc`` would be the pipe ``bc`` (twisted.web strips the
    first byte assuming it is ``/``).  ``OPTIONS *`` is the one asterisk-form
    request HTTP has (RFC 9112 section 3.2.4) and is answered like any OPTIONS.
    """
    if not path.isascii():
        raise Refusal(400, "The request target must be percent-encoded ASCII.", "bad_target")
    if path.startswith(b"/"):
        return
    if path == b"*":
        if method == b"OPTIONS":
            return
        raise Refusal(400, "The request target '*' is only for OPTIONS.", "bad_target")
    if _SCHEME.match(path):
        raise Refusal(400, "An absolute request target must be an http or https URL "
                      "with a host.", "bad_target")
    raise Refusal(400, "The request target must be a path starting with '/'.",
                  "bad_target")


def check_host(values: Sequence[bytes] | None, version: bytes) -> None:
    """Refuse (400) what RFC 9112 section 3.2 says a server MUST refuse: an
    HTTP/1.1 request without a Host, and any request with more than one Host
    or one that is not a host and port."""
    if values is None:
        if version == b"HTTP/1.1":
            raise Refusal(400, "An HTTP/1.1 request needs a Host header.", "bad_host")
        return
    if len(values) > 1:
        raise Refusal(400, "More than one Host header.", "bad_host")
    if _HOST.fullmatch(values[0]) is None:
        raise Refusal(400, "The Host header is not a host name and port.", "bad_host")


def parse_query(query: bytes) -> dict[bytes, list[bytes]]:
    """Query arguments as bytes, bare keys kept, any byte value accepted.

    The one query parser of the server: the routes and the spectator hub
    read what this returns, so they cannot disagree about a query.
    """
    args: dict[bytes, list[bytes]] = {}
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True, encoding="latin-1")
    for key, value in pairs:
        args.setdefault(key.encode("latin-1"), []).append(value.encode("latin-1"))
    return args


def refuse_repeated(args: dict[bytes, list[bytes]]) -> None:
    """400 when one of the relay's own parameters is given more than once."""
    for key in KNOWN_PARAMS:
        if len(args.get(key, ())) > 1:
            raise Refusal(400, f"Parameter {key.decode()} given more than once.",
                          "bad_param")


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
    if len(values) > 1:
        raise Refusal(400, f"Parameter {key.decode()} given more than once.", "bad_param")
    return values[0].decode("latin-1")


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
        if size > MAX_BYTES:
            raise Refusal(400, f"size must be at most {MAX_BYTES} bytes (2^63-1).",
                          "bad_param")
    return PartyParams(n=n, wait=wait, size=size)
