"""The RFC 9110 media-type grammar: what parses, what does not, and into what."""

from __future__ import annotations

import time

import pytest

from hoodypipe.web.mediatype import MAX_VALUE, MediaType, is_token, parse_media_type


@pytest.mark.parametrize(("value", "parsed"), [
    (b"text/plain", MediaType("text", "plain")),
    (b"TEXT/HTML", MediaType("text", "html")),
    (b"Image/SVG+XML", MediaType("image", "svg+xml")),
    (b"text/plain;charset=utf-8", MediaType("text", "plain", (("charset", b"utf-8"),))),
    (b"text/plain ; Charset=UTF-8", MediaType("text", "plain", (("charset", b"UTF-8"),))),
    (b"text/plain;\tcharset=utf-8\t;\tformat=flowed",
     MediaType("text", "plain", (("charset", b"utf-8"), ("format", b"flowed")))),
    (b'text/plain; charset="utf-8"', MediaType("text", "plain", (("charset", b"utf-8"),))),
    (b'a/b; x="a\\"b\\\\c"', MediaType("a", "b", (("x", b'a"b\\c'),))),
    (b'a/b; x="semi;colon=1, comma"', MediaType("a", "b", (("x", b"semi;colon=1, comma"),))),
    (b'a/b; x=""', MediaType("a", "b", (("x", b""),))),
    (b"a/b; x=\"\xe9\"", MediaType("a", "b", (("x", b"\xe9"),))),
    # RFC 9110 allows empty parameters: *( OWS ";" OWS [ parameter ] )
    (b"text/plain;", MediaType("text", "plain")),
    (b"text/plain; ;; ", MediaType("text", "plain")),
    (b"  text/plain  ", MediaType("text", "plain")),
    (b"\ttext/csv\t", MediaType("text", "csv")),
    (b"*/*", MediaType("*", "*")),
    (b"x!#$%&'*+-.^_`|~/0-9", MediaType("x!#$%&'*+-.^_`|~", "0-9")),
    (b"a/b; charset=one; charset=two",
     MediaType("a", "b", (("charset", b"one"), ("charset", b"two")))),
])
def test_values_in_the_grammar(value: bytes, parsed: MediaType) -> None:
    assert parse_media_type(value) == parsed


@pytest.mark.parametrize("value", [
    # trailing junk: the spellings that got script through the old filter
    b"text/html x", b'text/html "', b"text/html(", b"image/svg+xml x",
    b"text/javascript x", b"text/html,", b"text/html;charset=utf-8 x",
    b"text/html; charset=utf-8 x", b"text/html\x00", b"text/html\x0b",
    # not a type/subtype
    b"", b" ", b"\t", b"text", b"text/", b"/html", b"text//html", b"text/html/x",
    b"text /html", b"text/ html", b"text\\/html", b"text/h\xe9ml", b"\xef\xbb\xbftext/html",
    # lists are not a media type
    b"application/json, text/html", b"text/plain,text/html", b"image/png, image/svg+xml",
    # parameters out of grammar
    b"text/plain; charset", b"text/plain; charset=", b"text/plain; charset =utf-8",
    b"text/plain; charset= utf-8", b"text/plain; =utf-8", b"text/plain charset=utf-8",
    b'text/plain; charset="utf-8', b'text/plain; charset="a"b', b"text/plain; a=b c",
    b'text/plain; x="\x00"', b'text/plain; x="\x7f"', b"text/plain; x=\xe9",
    b'Text/Html ; Charset = "x"', b"text/html\t;q=1 2",
    # control characters, CR and LF anywhere
    b"text/plain\r\n", b"text/plain\r\nX-Injected: 1", b"text/pl\nain", b"text/plain\rx",
    b"\x00text/plain", b"text/plain;\x00", b"text/plain\x1b",
    # over-long
    b"a/" + b"b" * MAX_VALUE, b"text/plain; x=" + b"y" * MAX_VALUE,
    b"a" * 128 + b"/b", b"a/" + b"b" * 128,
])
def test_values_out_of_the_grammar_are_none(value: bytes) -> None:
    assert parse_media_type(value) is None


def test_the_longest_names_parse() -> None:
    parsed = parse_media_type(b"a" * 127 + b"/" + b"b" * 127)
    assert parsed is not None and len(parsed.essence) == 255


def test_first_parameter_of_a_name_wins() -> None:
    parsed = parse_media_type(b"a/b; Charset=one; charset=two")
    assert parsed is not None
    assert parsed.parameter("charset") == b"one"
    assert parsed.parameter("format") is None


@pytest.mark.parametrize("value", [
    b"text/plain" + b"; " * 500 + b"\x00",
    b"text/plain" + b" \t" * 500 + b"x",
    b'text/plain; x="' + b"\\a" * 500,
    b"text/plain" + b";" * 1000 + b"(",
])
def test_hostile_values_are_parsed_in_linear_time(value: bytes) -> None:
    started = time.perf_counter()
    for _ in range(100):
        assert parse_media_type(value) is None
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(("value", "token"), [
    (b"utf-8", True), (b"ISO-8859-1", True), (b"x'y", True),
    (b"", False), (b"a b", False), (b'"utf-8"', False), (b"a;b", False),
    (b"a,b", False), (b"\xe9", False), (b"a\r", False),
])
def test_is_token(value: bytes, token: bool) -> None:
    assert is_token(value) is token
