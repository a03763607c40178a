"""
Which of the sender's headers reach the receivers, and in what shape.

The relay never lets a sender make a receiver's browser run script: HTML,
SVG, JavaScript and XML types are served as text/plain (charset kept) and
nosniff is always set.
"""

from __future__ import annotations

import re

from twisted.web.http_headers import Headers

DEFAULT_TYPE = b"application/octet-stream"
MAX_X_HEADER = 8 * 1024
FORWARDED = (b"x-piping", b"x-hoody-pipe")
_DANGEROUS = re.compile(
    rb"^\s*(text/html|application/xhtml\+xml|image/svg\+xml|text/javascript|"
    rb"application/javascript|application/ecmascript|text/ecmascript|"
    rb"application/x-javascript|text/xml|application/xml|text/xsl|multipart/x-mixed-replace|[\w.+-]+/[\w.-]+\+xml)\s*(;|$)",
    re.IGNORECASE,
)
_CHARSET = re.compile(rb";\s*charset\s*=\s*([\w.:-]+)", re.IGNORECASE)
_LENGTH = re.compile(rb"[0-9]{1,19}")

FIXED: tuple[tuple[bytes, bytes], ...] = (
    (b"X-Content-Type-Options", b"nosniff"),
    (b"X-Robots-Tag", b"none"),
    (b"Access-Control-Allow-Origin", b"*"),
)


def sanitise_content_type(value: bytes | None) -> bytes:
    """The Content-Type a receiver gets for the sender's ``value``."""
    if not value or not value.strip():
        return DEFAULT_TYPE
    value = value.replace(b"\r", b"").replace(b"\n", b"")
    # Browsers read "a, b" as a list and use its last valid type, so every
    # listed type has to be harmless.
    if any(_DANGEROUS.match(part) for part in value.split(b",")):
        charset = _CHARSET.search(value)
        return b"text/plain" + (b"; charset=" + charset.group(1) if charset else b"")
    return value


def content_length(value: bytes | None) -> int | None:
    """The sender's Content-Length when it is 1..19 plain digits, else None."""
    if value is None or not _LENGTH.fullmatch(value):
        return None
    return int(value)


def _strip(value: bytes) -> bytes:
    return value.replace(b"\r", b"").replace(b"\n", b"")[:MAX_X_HEADER]


def receiver_headers(sender: Headers) -> list[tuple[bytes, bytes]]:
    """The headers every receiver of this sender's body is given."""
    out: list[tuple[bytes, bytes]] = [
        (b"Content-Type", sanitise_content_type(_first(sender, b"content-type"))),
    ]
    length = content_length(_first(sender, b"content-length"))
    if length is not None:
        out.append((b"Content-Length", b"%d" % length))
    disposition = _first(sender, b"content-disposition")
    if disposition:
        out.append((b"Content-Disposition", _strip(disposition)))
    exposed: list[bytes] = []
    for name, values in sender.getAllRawHeaders():
        if name.lower() in FORWARDED:
            exposed.append(name)
            out.extend((name, _strip(value)) for value in values)
    out.extend(FIXED)
    if exposed:
        out.append((b"Access-Control-Expose-Headers", b", ".join(dict.fromkeys(exposed))))
    return out


def _first(headers: Headers, name: bytes) -> bytes | None:
    values = headers.getRawHeaders(name)
    return values[0] if values else None
