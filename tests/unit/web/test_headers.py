"""Which sender headers reach the receivers, and in what shape."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from twisted.web.http_headers import Headers

from hoodypipe.web.headers import (
    DEFAULT_TYPE,
    FIXED,
    MAX_X_HEADER,
    SAFE_TYPES,
    SANDBOX,
    TEXT_TYPE,
    content_length,
    receiver_headers,
    sanitise_content_type,
)

# -- Content-Type -------------------------------------------------------------

JS_SPELLINGS = [
    b"text/javascript", b"application/javascript", b"application/x-javascript",
    b"text/x-javascript", b"text/jscript", b"text/livescript", b"text/ecmascript",
    b"application/ecmascript", b"application/x-ecmascript", b"text/x-ecmascript",
    b"text/javascript1.0", b"text/javascript1.5", b"application/javascript;version=1.8",
    b"text/babel", b"module/javascript", b"text/jsx",
]


@pytest.mark.parametrize(("sent", "served"), [
    (b"text/html", b"text/plain"),
    (b"TEXT/HTML", b"text/plain"),
    (b"TEXT/HTML; charset=utf-8", b"text/plain; charset=utf-8"),
    (b"text/html;charset=ISO-8859-1", b"text/plain; charset=ISO-8859-1"),
    (b'text/html; charset="utf-8"', b"text/plain; charset=utf-8"),
    (b"  text/html  ", b"text/plain"),
    (b"text/html;", b"text/plain"),
    (b"text/html; q=1; charset=utf-8", b"text/plain; charset=utf-8"),
    (b"application/xhtml+xml", b"text/plain"),
    (b"image/svg+xml", b"text/plain"),
    (b"image/svg+xml; charset=utf-8", b"text/plain; charset=utf-8"),
    (b"image/svg", b"text/plain"),
    (b"application/xml", b"text/plain"),
    (b"text/xml", b"text/plain"),
    (b"text/xsl", b"text/plain"),
    (b"application/xslt+xml", b"text/plain"),
    (b"application/atom+xml", b"text/plain"),
    (b"application/rss+xml", b"text/plain"),
    (b"application/vnd.foo.bar+xml", b"text/plain"),
    (b"application/mathml+xml", b"text/plain"),
    (b"video/foo+xml", b"text/plain"),
    (b"audio/x-thing+xml", b"text/plain"),
    (b"application/xml-dtd", b"text/plain"),
    (b"application/x-html", b"text/plain"),
    (b"text/vnd.wap.wml", b"text/plain"),
    (b"text/x-python; charset=utf-8", b"text/plain; charset=utf-8"),
    (b"text/cache-manifest", b"text/plain"),
    (b"text/css", b"text/plain"),
])
def test_script_capable_and_other_text_types_become_text_plain(
    sent: bytes, served: bytes
) -> None:
    assert sanitise_content_type(sent) == served


@pytest.mark.parametrize("sent", JS_SPELLINGS)
def test_every_javascript_spelling_becomes_text_plain(sent: bytes) -> None:
    assert sanitise_content_type(sent) == b"text/plain"
    assert sanitise_content_type(sent.upper()) == b"text/plain"


@pytest.mark.parametrize("sent", [
    b"application/json",
    b"application/json; charset=utf-8",
    b"text/plain",
    b"text/plain; charset=utf-8",
    b"text/plain; charset=ISO-8859-1",
    b"text/csv",
    b"text/markdown",
    b"image/png",
    b"image/jpeg",
    b"image/webp",
    b"image/avif",
    b"application/octet-stream",
    b"application/pdf",
    b"application/zip",
    b"application/gzip",
    b"application/x-tar",
    b"video/mp4",
    b"video/webm",
    b"video/mp2t",
    b"audio/mpeg",
    b"audio/ogg",
    b"audio/webm",
    b"font/woff2",
])
def test_safe_types_pass_as_they_are(sent: bytes) -> None:
    assert sanitise_content_type(sent) == sent


@pytest.mark.parametrize(("sent", "served"), [
    (b"IMAGE/PNG", b"image/png"),
    (b"Video/MP4", b"video/mp4"),
    (b"text/plain;charset=utf-8", b"text/plain; charset=utf-8"),
    (b"text/plain ;\tcharset=utf-8", b"text/plain; charset=utf-8"),
    (b"text/plain;\tcharset=utf-8", b"text/plain; charset=utf-8"),
    (b"text/plain; format=flowed; charset=utf-8; delsp=yes", b"text/plain; charset=utf-8"),
    (b"image/png; name=x.png", b"image/png"),
    (b"video/mp4; codecs=\"avc1.42E01E, mp4a.40.2\"", b"video/mp4"),
    (b"text/plain; charset=a; charset=b", b"text/plain; charset=a"),
])
def test_safe_types_are_rebuilt_from_their_parts(sent: bytes, served: bytes) -> None:
    assert sanitise_content_type(sent) == served


@pytest.mark.parametrize("charset", [
    b'"utf 8"', b'"utf-8;x=1"', b'"a,text/html"', b'""', b'"\xe9"', b"x" * 41,
])
def test_a_charset_that_is_not_a_short_token_is_dropped(charset: bytes) -> None:
    assert sanitise_content_type(b"text/html; charset=" + charset) == b"text/plain"
    assert sanitise_content_type(b"text/plain; charset=" + charset) == b"text/plain"


def test_a_charset_of_40_characters_is_kept() -> None:
    charset = b"x" * 40
    assert sanitise_content_type(b"text/plain; charset=" + charset) == (
        b"text/plain; charset=" + charset)


@pytest.mark.parametrize("sent", [
    b"application/x-msdownload", b"application/vnd.ms-excel",
    b"application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    b"application/wasm", b"application/x-shockwave-flash", b"multipart/x-mixed-replace",
    b"multipart/form-data; boundary=x", b"message/rfc822", b"model/gltf-binary",
    b"image/x-unknown", b"application/ld+json", b"application/manifest+json",
    b"application/speculationrules+json", b"*/*", b"x/y", b"video/vnd.foo+zip",
    b"application/octet-stream; charset=utf-8",
])
def test_types_not_on_the_list_download(sent: bytes) -> None:
    assert sanitise_content_type(sent) == DEFAULT_TYPE


@pytest.mark.parametrize("sent", [
    None, b"", b"   ", b"\t",
    b"text/html x", b'text/html "', b"text/html(", b"image/svg+xml x",
    b"text/javascript x", b"text/x-javascript x", b"text/html\x00", b"text/html\r\n",
    b"text/html\r\nX-Injected: 1", b"text/html x; charset=utf-8",
    b"text/plain; charset=utf-8 x", b'Text/Html ; Charset = "x"', b"text/html\t;q=1 2",
    b"text/html" + b" " * 2000, b"text/" + b"h" * 2000, b"text/plain; x=" + b"y" * 2000,
    b"\xef\xbb\xbftext/html", b"text/h\xe9ml", b"text", b"html", b"<script>",
])
def test_what_does_not_parse_is_octet_stream(sent: bytes | None) -> None:
    assert sanitise_content_type(sent) == DEFAULT_TYPE == b"application/octet-stream"


# Browsers read a comma-separated Content-Type as a list and use its last
# valid type (Fetch 'extract a MIME type'): a list is not a media type.
@pytest.mark.parametrize("sent", [
    b"application/json, text/html",
    b"text/plain,text/html;charset=utf-8",
    b"text/html,",
    b"image/png, image/svg+xml",
])
def test_a_listed_type_is_octet_stream(sent: bytes) -> None:
    assert sanitise_content_type(sent) == DEFAULT_TYPE


def test_two_content_type_lines_are_a_list_too() -> None:
    sender = headers((b"Content-Type", b"text/plain"), (b"Content-Type", b"text/html"))
    assert dict(receiver_headers(sender))[b"Content-Type"] == DEFAULT_TYPE


def test_every_served_type_is_one_of_a_few_shapes() -> None:
    """Whatever is sent, the answer is an allow-listed essence plus at most a charset."""
    samples = [b"text/html; charset=utf-8", b"TEXT/PLAIN;CHARSET=X", b"image/png;a=b",
               b"application/x-javascript; charset=latin1", b"zzz/yyy; charset=q"]
    for sent in samples:
        essence, _, rest = sanitise_content_type(sent).partition(b"; ")
        assert essence.decode() in SAFE_TYPES or essence == TEXT_TYPE
        assert rest == b"" or rest.startswith(b"charset=")


# -- Content-Length -------------------------------------------------------------


@pytest.mark.parametrize(("sent", "length"), [
    (b"0", 0),
    (b"1", 1),
    (b"42", 42),
    (b"0042", 42),
    (b"1234567890123456789", 1234567890123456789),
    (b"9223372036854775807", 2**63 - 1),
])
def test_content_length_of_plain_digits(sent: bytes, length: int) -> None:
    assert content_length(sent) == length


@pytest.mark.parametrize("sent", [
    None, b"", b"1" * 20, b"9" * 19, b"9223372036854775808", b"-1", b"+1", b" 1", b"1 ",
    b"1,1", b"1e3", b"0x10", b"\xef\xbc\x91", b"1.0", b"abc",
])
def test_content_length_anything_else_is_none(sent: bytes | None) -> None:
    assert content_length(sent) is None


# Regression (fixed in 7993d3f): '$' also matched before a final newline.
def test_content_length_with_a_trailing_newline_is_none() -> None:
    assert content_length(b"12\n") is None


# -- receiver_headers -------------------------------------------------------------


class RawHeaders:
    """Stands in for Headers with values twisted would already have cleaned.

    ``receiver_headers`` must be safe on its own, whatever gives it headers.
    """

    def __init__(self, pairs: list[tuple[bytes, bytes]]) -> None:
        self._pairs = pairs

    def getRawHeaders(self, name: bytes) -> Sequence[bytes] | None:
        values = [v for k, v in self._pairs if k.lower() == name.lower()]
        return values or None

    def getAllRawHeaders(self) -> Iterator[tuple[bytes, Sequence[bytes]]]:
        names: dict[bytes, list[bytes]] = {}
        for k, v in self._pairs:
            names.setdefault(k, []).append(v)
        return iter(names.items())


def headers(*pairs: tuple[bytes, bytes]) -> Headers:
    h = Headers()
    for name, value in pairs:
        h.addRawHeader(name, value)
    return h


def test_fixed_headers_always_present() -> None:
    assert receiver_headers(Headers()) == [
        (b"Content-Type", b"application/octet-stream"),
        (b"X-Content-Type-Options", b"nosniff"),
        (b"X-Robots-Tag", b"none"),
        (b"Access-Control-Allow-Origin", b"*"),
        (b"Content-Security-Policy", b"sandbox"),
        (b"Access-Control-Expose-Headers", b"X-Hoody-Pipe-Transfer-Id"),
    ]
    assert list(FIXED) + [SANDBOX] == receiver_headers(Headers())[1:-1]


def test_a_full_set_of_sender_headers() -> None:
    sender = headers(
        (b"Content-Type", b"text/html; charset=utf-8"),
        (b"Content-Length", b"42"),
        (b"Content-Disposition", b'attachment; filename="report.html"'),
        (b"X-Piping", b"one"),
        (b"x-piping", b"two"),
        (b"X-HOODY-PIPE", b"meta=1"),
        (b"X-Other", b"not forwarded"),
        (b"X-Piping-Extra", b"not forwarded"),
        (b"X-Hoody-Pipe-Transfer-Id", b"not forwarded"),
        (b"Authorization", b"Bearer secret"),
        (b"Cookie", b"session=secret"),
        (b"Host", b"example.com"),
    )
    assert receiver_headers(sender) == [
        (b"Content-Type", b"text/plain; charset=utf-8"),
        (b"Content-Length", b"42"),
        (b"X-Piping", b"one"),
        (b"X-Piping", b"two"),
        (b"X-Hoody-Pipe", b"meta=1"),
        (b"X-Content-Type-Options", b"nosniff"),
        (b"X-Robots-Tag", b"none"),
        (b"Access-Control-Allow-Origin", b"*"),
        (b"Content-Security-Policy", b"sandbox"),
        (b"Access-Control-Expose-Headers", b"X-Hoody-Pipe-Transfer-Id, X-Piping, X-Hoody-Pipe"),
    ]


@pytest.mark.parametrize("length", [b"", b"-1", b"1" * 20, b"12abc", b"0x1"])
def test_bad_content_length_is_not_forwarded(length: bytes) -> None:
    names = [n for n, _ in receiver_headers(headers((b"Content-Length", length)))]
    assert b"Content-Length" not in names


def test_expose_names_the_transfer_id_and_the_forwarded_x_headers_once() -> None:
    out = dict(receiver_headers(headers((b"X-Hoody-Pipe", b"a"),
                                        (b"X-Hoody-Pipe", b"b"))))
    assert out[b"Access-Control-Expose-Headers"] == b"X-Hoody-Pipe-Transfer-Id, X-Hoody-Pipe"
    out = dict(receiver_headers(headers((b"X-Other", b"a"))))
    assert out[b"Access-Control-Expose-Headers"] == b"X-Hoody-Pipe-Transfer-Id"
    assert b"X-Other" not in out


def test_content_disposition_is_left_to_each_receiver() -> None:
    out = receiver_headers(headers((b"Content-Disposition", b"attachment; filename=a")))
    assert b"Content-Disposition" not in [n for n, _ in out]


def test_cr_and_lf_are_stripped_from_forwarded_values() -> None:
    sender = RawHeaders([
        (b"X-Piping", b"a\r\nSet-Cookie: evil=1"),
        (b"X-Hoody-Pipe", b"\nb\r"),
        (b"Content-Type", b"text/html\r\n"),
    ])
    out = receiver_headers(sender)  # type: ignore[arg-type]
    assert (b"X-Piping", b"aSet-Cookie: evil=1") in out
    assert (b"X-Hoody-Pipe", b"b") in out
    assert (b"Content-Type", b"application/octet-stream") in out
    assert all(b"\r" not in v and b"\n" not in v for _, v in out)


def test_forwarded_values_are_cut_to_8_kib() -> None:
    assert MAX_X_HEADER == 8192
    exact = b"e" * 8192
    sender = RawHeaders([
        (b"X-Piping", b"x" * 10_000),
        (b"X-Piping", exact),
        (b"X-Hoody-Pipe", b"\r\n" * 10 + b"y" * 8192 + b"z"),
    ])
    out = receiver_headers(sender)  # type: ignore[arg-type]
    x_piping = [v for n, v in out if n == b"X-Piping"]
    assert x_piping == [b"x" * 8192, exact]
    assert [v for n, v in out if n == b"X-Hoody-Pipe"] == [b"y" * 8192]


def test_an_empty_x_piping_value_is_still_forwarded() -> None:
    out = receiver_headers(headers((b"X-Piping", b"")))
    assert (b"X-Piping", b"") in out
    assert (b"Access-Control-Expose-Headers", b"X-Hoody-Pipe-Transfer-Id, X-Piping") in out
