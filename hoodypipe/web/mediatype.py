"""
The HTTP media-type grammar (RFC 9110 section 8.3.1), and nothing else.

A sender's Content-Type is hostile text: browsers are lenient and will find
``text/html`` inside ``text/html x`` or ``text/html "``.  So the value is
parsed exactly as the grammar says, and the caller re-serialises from the
parsed parts; what does not parse is not a media type at all::

    media-type = type "/" subtype parameters
    parameters = *( OWS ";" OWS [ parameter ] )
    parameter  = parameter-name "=" parameter-value
    parameter-value = ( token / quoted-string )

The expressions below are unambiguous (every repetition is entered by a
character the previous part cannot consume), so matching is linear in the
length of the value, whatever a sender puts in it.
"""

from __future__ import annotations

import re

import attrs

#: Longer values are refused unread; real ones are a few dozen bytes.
MAX_VALUE = 1024
#: RFC 6838 section 4.2: type and subtype names are at most 127 characters.
MAX_NAME = 127

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_ESSENCE = re.compile(rb"(" + _TOKEN + rb")/(" + _TOKEN + rb")")
# One ``OWS ";" OWS [ parameter ]`` step, matched from where the last one ended.
_PARAMETER = re.compile(
    rb"[ \t]*;[ \t]*(?:(" + _TOKEN + rb")=(" + _TOKEN + rb"|" + _QUOTED + rb"))?")
_TOKEN_ONLY = re.compile(_TOKEN)
_QUOTED_PAIR = re.compile(rb"\\(.)", re.DOTALL)
_OWS = b" \t"


@attrs.frozen
class MediaType:
    """A parsed media type: lowercased names, parameters in the order sent."""

    type: str
    subtype: str
    parameters: tuple[tuple[str, bytes], ...] = ()

    @property
    def essence(self) -> str:
        return f"{self.type}/{self.subtype}"

    def parameter(self, name: str) -> bytes | None:
        """The first value of parameter ``name`` (names are case-insensitive)."""
        for key, value in self.parameters:
            if key == name:
                return value
        return None


def parse_media_type(value: bytes) -> MediaType | None:
    """``value`` as a MediaType, or None when it is not one by the grammar.

    Leading and trailing SP/HTAB are not part of a field value (RFC 9110
    section 5.5) and are ignored; anything else out of grammar, including a
    list (``a/b, c/d``), control characters and over-long values, is None.
    """
    if len(value) > MAX_VALUE:
        return None
    value = value.strip(_OWS)
    essence = _ESSENCE.match(value)
    if essence is None:
        return None
    kind, subtype = essence.group(1), essence.group(2)
    if len(kind) > MAX_NAME or len(subtype) > MAX_NAME:
        return None
    parameters: list[tuple[str, bytes]] = []
    position = essence.end()
    while position < len(value):
        step = _PARAMETER.match(value, position)
        if step is None or step.end() == position:
            return None
        if step.group(1) is not None:
            parameters.append((step.group(1).decode("ascii").lower(),
                               _unquote(step.group(2))))
        position = step.end()
    return MediaType(kind.decode("ascii").lower(), subtype.decode("ascii").lower(),
                     tuple(parameters))


def is_token(value: bytes) -> bool:
    return _TOKEN_ONLY.fullmatch(value) is not None


def _unquote(value: bytes) -> bytes:
    """A parameter's value: a token as it is, a quoted-string without its quoting
    (RFC 9110 section 5.6.6: the two forms are equivalent)."""
    if value.startswith(b'"'):
        return _QUOTED_PAIR.sub(rb"\1", value[1:-1])
    return value
