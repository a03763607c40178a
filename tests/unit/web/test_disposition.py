"""Each receiver's Content-Disposition: the rules, the sanitising and the encoding."""

from __future__ import annotations

import re

import pytest

from hoodypipe.web.disposition import (
    Offered,
    attachment,
    for_receiver,
    last_segment,
    offered_by,
    sanitise_filename,
)
from hoodypipe.web.flags import flag, is_on


def args(*pairs: tuple[str, str]) -> dict[bytes, list[bytes]]:
    """Query args as RelayRequest.process makes them: bytes, latin-1 of the raw bytes."""
    out: dict[bytes, list[bytes]] = {}
    for key, value in pairs:
        out.setdefault(key.encode(), []).append(value.encode("utf-8"))
    return out


# -- boolean flags ------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "1", "true", "TRUE", "yes", "Yes", "on", "2", "x"])
def test_flag_is_on_for_everything_but_the_off_words(value: str) -> None:
    assert flag(args(("download", value)), b"download") is True
    assert is_on(args(("download", value)), b"download")


@pytest.mark.parametrize("value", ["0", "false", "False", "FALSE", "no", "NO", "nO"])
def test_flag_is_off_for_false_no_and_zero_in_any_case(value: str) -> None:
    assert flag(args(("video", value)), b"video") is False
    assert not is_on(args(("video", value)), b"video")


def test_an_absent_flag_is_none_and_the_last_value_counts() -> None:
    assert flag({}, b"progress") is None
    assert not is_on({}, b"progress")
    assert flag(args(("progress", "1"), ("progress", "0")), b"progress") is False


# -- sanitising ---------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "clean"), [
    ("report.pdf", "report.pdf"),
    ("a\x00b\rc\nd\te\x1ff\x7fg\x80h\x9fi.txt", "abcdefghi.txt"),
    ("../../etc/passwd", "etcpasswd"),
    ("..\\..\\boot.ini", "boot.ini"),
    ("...hidden", "hidden"),
    # controls go first, so a dot behind one is still leading afterwards
    ("\x01.profile", "profile"),
    # separators go before leading dots: "/." leaves a leading dot to remove
    ("/.bashrc", "bashrc"),
    # leading dots only: inner and trailing dots stay
    ("a..b.", "a..b."),
    ("résumé.pdf", "résumé.pdf"),
    ("\u0085next", "next"),
    ("", ""),
    ("...", ""),
    ("/\\/", ""),
])
def test_sanitise_in_the_contracts_order(raw: str, clean: str) -> None:
    assert sanitise_filename(raw) == clean


def test_sanitise_keeps_the_first_255_characters_after_the_rest() -> None:
    assert sanitise_filename("." * 10 + "x" * 300) == "x" * 255
    assert sanitise_filename("é" * 300) == "é" * 255
    assert len(sanitise_filename("/" * 100 + "a" * 255)) == 255


# -- encoding -------------------------------------------------------------------------


def test_an_ascii_name_is_a_quoted_filename() -> None:
    assert attachment("report.bin") == b'attachment; filename="report.bin"'
    assert attachment('say "hi".txt') == b'attachment; filename="say \\"hi\\".txt"'
    assert attachment("a;b=c, d.txt") == b'attachment; filename="a;b=c, d.txt"'


def test_a_non_ascii_name_gets_filename_star_and_an_underscored_fallback() -> None:
    assert attachment("résumé.pdf") == (
        b"attachment; filename=\"r_sum_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf")
    assert attachment("日本 語.txt") == (
        b"attachment; filename=\"__ _.txt\"; "
        b"filename*=UTF-8''%E6%97%A5%E6%9C%AC%20%E8%AA%9E.txt")
    assert attachment("😀") == b"attachment; filename=\"_\"; filename*=UTF-8''%F0%9F%98%80"


def test_filename_star_uses_only_rfc5987_attr_chars() -> None:
    value = attachment("é !#$&+-.^_`|~'*%\"(),;=?@[]{}").decode()
    encoded = value.split("filename*=UTF-8''", 1)[1]
    assert re.fullmatch(r"(?:%[0-9A-F]{2}|[A-Za-z0-9!#$&+\-.^_`|~])+", encoded)


@pytest.mark.parametrize("name", [None, "", "...", "\x00\x01", "//"])
def test_a_name_that_sanitises_to_nothing_is_a_bare_attachment(name: str | None) -> None:
    assert attachment(name) == b"attachment"


def test_every_value_is_a_single_safe_header_line() -> None:
    nasty = "a\r\nSet-Cookie: x=1\x00\x7f\x85.txt"
    value = attachment(nasty)
    assert b"\r" not in value and b"\n" not in value and b"\x00" not in value
    assert value == b'attachment; filename="aSet-Cookie: x=1.txt"'


# -- what the sender offers -----------------------------------------------------------


@pytest.mark.parametrize(("header", "filename"), [
    (b'attachment; filename="a.txt"', "a.txt"),
    (b"attachment; filename=a.txt", "a.txt"),
    (b'inline; filename="shown.png"', "shown.png"),
    (b'form-data; name="file"; filename="up.bin"', "up.bin"),
    (b'ATTACHMENT ; FILENAME = "x.y"', "x.y"),
    (b'attachment; filename="q\\"uote.txt"', 'q"uote.txt'),
    (b"attachment; filename*=UTF-8''%E2%82%AC%20rates.txt", "€ rates.txt"),
    (b"attachment; filename*=iso-8859-1'en'%A3%20rates", "£ rates"),
    # filename* wins wherever it is
    (b"attachment; filename*=UTF-8''%C3%A9.txt; filename=\"e.txt\"", "é.txt"),
    (b"attachment; filename=\"e.txt\"; filename*=UTF-8''%C3%A9.txt", "é.txt"),
    # an unknown charset in filename* falls back to filename
    (b"attachment; filename=\"e.txt\"; filename*=koi8-r''%C3", "e.txt"),
    # raw UTF-8 in a quoted filename, as browsers and curl send it
    ('attachment; filename="naïve.txt"'.encode(), "naïve.txt"),
    (b"attachment", None),
    (b"inline", None),
    (b"attachment; size=12", None),
    # not the RFC 6266 grammar: still an attachment, no name taken from it
    (b"attachment; filename=\"open", None),
    (b"attachment; filename=a b", None),
    (b"; filename=x", None),
    (b"", None),
])
def test_offered_by_parses_the_rfc6266_grammar(header: bytes, filename: str | None) -> None:
    assert offered_by(header) == Offered(filename=filename)


def test_no_header_offers_nothing() -> None:
    assert offered_by(None) is None


def test_last_segment_is_percent_decoded() -> None:
    assert last_segment("reports/2026/q4%20summary.pdf") == "q4 summary.pdf"
    assert last_segment("caf%C3%A9") == "café"
    assert last_segment("bad%FF") == "bad\ufffd"
    assert last_segment("plain") == "plain"


# -- the decision ------------------------------------------------------------------------

SENT = Offered(filename="from-sender.txt")


@pytest.mark.parametrize(("query", "offered", "expected"), [
    # no parameters: whatever the sender offered, as an attachment
    ((), None, None),
    ((), SENT, b'attachment; filename="from-sender.txt"'),
    ((), Offered(filename=None), b"attachment"),
    # ?download in every truthy spelling
    ((("download", ""),), None, b'attachment; filename="file.iso"'),
    ((("download", "1"),), None, b'attachment; filename="file.iso"'),
    ((("download", "TRUE"),), SENT, b'attachment; filename="from-sender.txt"'),
    ((("download", "anything"),), Offered(filename=None), b'attachment; filename="file.iso"'),
    # off: no header at all, whatever else was said
    ((("download", "0"),), SENT, None),
    ((("download", "False"),), None, None),
    ((("download", "no"), ("filename", "x.bin")), SENT, None),
    # ?filename implies attachment and wins over the sender's name
    ((("filename", "report.bin"),), None, b'attachment; filename="report.bin"'),
    ((("filename", "report.bin"),), SENT, b'attachment; filename="report.bin"'),
    ((("download", "1"), ("filename", "report.bin")), SENT, b'attachment; filename="report.bin"'),
    ((("filename", "../../x"),), None, b'attachment; filename="x"'),
    ((("filename", ""),), SENT, b"attachment"),
])
def test_for_receiver(
    query: tuple[tuple[str, str], ...], offered: Offered | None, expected: bytes | None,
) -> None:
    assert for_receiver(args(*query), offered, "dir/file.iso") == expected


def test_the_pipe_name_fallback_is_sanitised_and_encoded() -> None:
    assert for_receiver(args(("download", "")), None, "a/r%C3%A9sum%C3%A9") == (
        b"attachment; filename=\"r_sum_\"; filename*=UTF-8''r%C3%A9sum%C3%A9")
    assert for_receiver(args(("download", "")), None, "a/...") == b"attachment"


def test_a_non_ascii_filename_parameter() -> None:
    query = {b"filename": ["été.txt".encode().decode("latin-1").encode("latin-1")]}
    assert for_receiver(query, None, "x") == (
        b"attachment; filename=\"_t_.txt\"; filename*=UTF-8''%C3%A9t%C3%A9.txt")
