"""
The ``Content-Disposition`` each receiver gets, decided per receiver.

Two receivers of one transfer may want different things (one saves the file,
the other shows it), so the header is not copied from the sender: it is
rebuilt for every receiver from what the sender offered (its own header, or
the filename of a multipart form's file part) and that receiver's
``?download`` and ``?filename``. A sender's header is parsed with the RFC 6266
grammar and only its filename survives; every name is sanitised and encoded
here, so nothing of the sender's header text reaches a browser as is.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote_to_bytes

import attrs

from hoodypipe.web.flags import flag

MAX_FILENAME = 255
ATTACHMENT = b"attachment"

# C0, DEL and C1 controls, then the path separators, then leading dots: the
# contract's order, each step on the result of the one before.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")
_SEPARATORS = re.compile(r"[/\\]")
# RFC 5987 attr-char minus ALPHA/DIGIT (which ``quote`` always keeps).
_ATTR_PUNCTUATION = "!#$&+-.^_`|~"

# RFC 9110 token and quoted-string (obs-text allowed), RFC 6266 parameters.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\t\x20-\x7e\x80-\xff])*"'
_TYPE = re.compile(rf"[ \t]*({_TOKEN})[ \t]*")
_PARAM = re.compile(rf";[ \t]*({_TOKEN})[ \t]*=[ \t]*({_TOKEN}|{_QUOTED})[ \t]*")
_EXT_VALUE = re.compile(r"([A-Za-z0-9!#$%&+^_`{}~-]+)'([A-Za-z0-9-]*)'((?:%[0-9A-Fa-f]{2}|"
                        r"[A-Za-z0-9!#$&+.^_`|~-])*)")
_ESCAPE = re.compile(r"\\(.)")


@attrs.frozen
class Offered:
    """What a sender asked for: a disposition, with or without a filename."""

    filename: str | None = None


def sanitise_filename(name: str) -> str:
    """``name`` with controls, slashes and leading dots removed, at most 255 characters."""
    name = _CONTROLS.sub("", name)
    name = _SEPARATORS.sub("", name)
    name = name.lstrip(".")
    return name[:MAX_FILENAME]


def attachment(filename: str | None) -> bytes:
    """``attachment`` with ``filename`` sanitised and encoded (RFC 6266/5987).

    An ASCII name goes in ``filename="..."``; any other also gets
    ``filename*=UTF-8''...`` after an ASCII fallback in which every non-ASCII
    character is ``_``. A name that sanitises to nothing gives a bare
    ``attachment``.
    """
    name = sanitise_filename(filename or "")
    if not name:
        return ATTACHMENT
    fallback = "".join(c if c < "\x80" else "_" for c in name)
    value = 'attachment; filename="' + fallback.replace('"', '\\"') + '"'
    if fallback != name:
        value += "; filename*=UTF-8''" + quote(name, safe=_ATTR_PUNCTUATION)
    return value.encode("ascii")


def offered_by(header: bytes | None) -> Offered | None:
    """What a sender's ``Content-Disposition`` offers; None when it sent none.

    Whatever its type (``inline``, ``form-data``, ``attachment`` or unknown)
    a sender that sent the header gets an attachment; a header that does not
    parse keeps that, without a filename.
    """
    if header is None:
        return None
    return Offered(filename=_parse_filename(header.decode("latin-1")))


def _parse_filename(text: str) -> str | None:
    match = _TYPE.match(text)
    if match is None:
        return None
    pos = match.end()
    plain: str | None = None
    extended: str | None = None
    while pos < len(text):
        param = _PARAM.match(text, pos)
        if param is None:
            return None
        pos = param.end()
        key, value = param.group(1).lower(), param.group(2)
        if key == "filename" and plain is None:
            plain = _unquote(value)
        elif key == "filename*" and extended is None:
            extended = _ext_value(value)
    return extended if extended is not None else plain


def _unquote(value: str) -> str:
    if value.startswith('"'):
        value = _ESCAPE.sub(r"\1", value[1:-1])
    raw = value.encode("latin-1")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return value


def _ext_value(value: str) -> str | None:
    """An RFC 5987 ``charset'lang'pct-encoded`` value, UTF-8 or ISO-8859-1 only."""
    match = _EXT_VALUE.fullmatch(value)
    if match is None:
        return None
    charset = match.group(1).lower()
    if charset not in ("utf-8", "iso-8859-1"):
        return None
    try:
        return unquote_to_bytes(match.group(3)).decode(charset)
    except UnicodeDecodeError:
        return None


def last_segment(pipe_name: str) -> str:
    """The pipe name's last segment, percent-decoded: the name of last resort."""
    raw = unquote_to_bytes(pipe_name.rsplit("/", 1)[-1])
    return raw.decode("utf-8", errors="replace")


def for_receiver(
    args: dict[bytes, list[bytes]], offered: Offered | None, pipe_name: str,
) -> bytes | None:
    """The Content-Disposition for a receiver with query ``args``, or None for none.

    ``?download=false|no|0`` wins over everything; then ``?filename``; then
    ``?download`` (the sender's filename, else the pipe name's); without
    either, whatever the sender offered, as an attachment.
    """
    download = flag(args, b"download")
    if download is False:
        return None
    asked = args.get(b"filename")
    if asked is not None:
        return attachment(asked[-1].decode("utf-8", errors="replace"))
    if download:
        if offered is not None and offered.filename:
            return attachment(offered.filename)
        return attachment(last_segment(pipe_name))
    if offered is None:
        return None
    return attachment(offered.filename)
