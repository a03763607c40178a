"""
Which of the sender's headers reach the receivers, and in what shape.

The relay never lets a sender make a receiver's browser run script on the
relay's origin.  The Content-Type is parsed with the HTTP grammar
(``mediatype``) and rebuilt from its parts; only types on an allow-list of
things a browser shows or plays but never executes pass as they are.  Every
other type becomes ``text/plain`` when it is text or may carry script (HTML,
XML, SVG, JavaScript: the receiver can still read it) and
``application/octet-stream`` otherwise (a download).  On top of that every
receiver response carries ``nosniff`` and a ``sandbox`` policy, so even a
type we judged wrong renders without script and with an opaque origin.
"""

from __future__ import annotations

import re

from twisted.web.http_headers import Headers

from hoodypipe.web.mediatype import MediaType, is_token, parse_media_type
from hoodypipe.web.names import MAX_BYTES

DEFAULT_TYPE = b"application/octet-stream"
TEXT_TYPE = b"text/plain"
MAX_X_HEADER = 8 * 1024
#: IANA charset names are at most 40 characters.
MAX_CHARSET = 40
FORWARDED = (b"x-piping", b"x-hoody-pipe")
TRANSFER_ID = b"X-Hoody-Pipe-Transfer-Id"
_LENGTH = re.compile(rb"[0-9]{1,19}")

#: Shown or played by a browser, never executed (with nosniff).
SAFE_TYPES = frozenset({
    # text a browser shows as text
    "text/plain", "text/csv", "text/tab-separated-values", "text/markdown", "text/vtt",
    # raster images (SVG is not one: it is an XML document that runs script)
    "image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/apng",
    "image/bmp", "image/tiff", "image/x-icon", "image/vnd.microsoft.icon",
    "image/heic", "image/heif", "image/jxl",
    # data and archives: shown as text or downloaded
    "application/octet-stream", "application/json", "application/x-ndjson",
    "application/pdf", "application/zip", "application/gzip", "application/x-gzip",
    "application/x-tar", "application/x-bzip2", "application/x-xz", "application/zstd",
    "application/x-7z-compressed", "application/vnd.rar", "application/ogg",
    "font/woff", "font/woff2", "font/ttf", "font/otf",
})
#: Whole families handled by the media pipeline (never a document that runs
#: script), as long as the subtype carries no structured suffix such as
#: ``+xml``, which Chromium renders as an XML document whatever the type.
SAFE_FAMILIES = frozenset({"audio", "video"})
#: Words of a subtype (split at ``.``, ``+`` and ``-``) that make a type
#: script or a document that may run script: ``x-javascript``,
#: ``javascript1.5``, ``svg+xml``, ``xml-dtd``, ``xslt+xml``...
_SCRIPT_WORDS = ("html", "xhtml", "xml", "svg", "javascript", "ecmascript", "jscript",
                 "livescript", "xsl")
_WORDS = re.compile(r"[.+-]")

#: On every response of the relay.
FIXED: tuple[tuple[bytes, bytes], ...] = (
    (b"X-Content-Type-Options", b"nosniff"),
    (b"X-Robots-Tag", b"none"),
    (b"Access-Control-Allow-Origin", b"*"),
)
#: Only on responses whose body came from someone else (receivers, refusals):
#: no script runs and the document gets an opaque origin, while images,
#: audio, video, downloads and fetch() of the body work as before.
SANDBOX = (b"Content-Security-Policy", b"sandbox")


def sanitise_content_type(value: bytes | None) -> bytes:
    """The Content-Type a receiver gets for the sender's ``value``."""
    parsed = parse_media_type(value) if value is not None else None
    if parsed is None:
        return DEFAULT_TYPE
    essence = _served_essence(parsed)
    if essence == DEFAULT_TYPE:
        return essence
    charset = parsed.parameter("charset")
    if charset is not None and len(charset) <= MAX_CHARSET and is_token(charset):
        return essence + b"; charset=" + charset
    return essence


def _served_essence(parsed: MediaType) -> bytes:
    essence = parsed.essence
    if essence in SAFE_TYPES or (parsed.type in SAFE_FAMILIES and "+" not in parsed.subtype):
        return essence.encode("ascii")
    words = _WORDS.split(parsed.subtype)
    if parsed.type == "text" or any(w.startswith(_SCRIPT_WORDS) for w in words):
        return TEXT_TYPE
    return DEFAULT_TYPE


def content_length(value: bytes | None) -> int | None:
    """The sender's Content-Length when it is 1..19 plain digits and at most
    MAX_BYTES, else None."""
    if value is None or not _LENGTH.fullmatch(value):
        return None
    length = int(value)
    return length if length <= MAX_BYTES else None


def _strip(value: bytes) -> bytes:
    return value.replace(b"\r", b"").replace(b"\n", b"")[:MAX_X_HEADER]


def receiver_headers(sender: Headers) -> list[tuple[bytes, bytes]]:
    """The headers every receiver of this sender's body is given."""
    out: list[tuple[bytes, bytes]] = [
        (b"Content-Type", sanitise_content_type(_combined(sender, b"content-type"))),
    ]
    length = content_length(_first(sender, b"content-length"))
    if length is not None:
        out.append((b"Content-Length", b"%d" % length))
    # Content-Disposition is decided per receiver (web/disposition.py).
    exposed: list[bytes] = [TRANSFER_ID]
    for name, values in sender.getAllRawHeaders():
        if name.lower() in FORWARDED:
            exposed.append(name)
            out.extend((name, _strip(value)) for value in values)
    out.extend(FIXED)
    out.append(SANDBOX)
    out.append((b"Access-Control-Expose-Headers", b", ".join(dict.fromkeys(exposed))))
    return out


def _combined(headers: Headers, name: bytes) -> bytes | None:
    """All values of ``name`` as one field value (RFC 9110 section 5.3): two
    Content-Type lines become a list, which is no media type."""
    values = headers.getRawHeaders(name)
    return b", ".join(values) if values else None


def _first(headers: Headers, name: bytes) -> bytes | None:
    values = headers.getRawHeaders(name)
    return values[0] if values else None
