"""The multipart reader: which part reaches the receivers, at every split of the body."""

from __future__ import annotations

import random

import attrs
import pytest

from hoodypipe.bytepath.multipart import (
    MAX_TEXT,
    FirstPartReader,
    PartHead,
    form_boundary,
)
from hoodypipe.core.errors import Refusal

B = b"----hoodypipe-test-7f3a"


def part(disposition: bytes, body: bytes, *headers: bytes) -> bytes:
    head = b"Content-Disposition: " + disposition + b"\r\n"
    head += b"".join(h + b"\r\n" for h in headers)
    return b"--" + B + b"\r\n" + head + b"\r\n" + body + b"\r\n"


def form(*parts: bytes, preamble: bytes = b"", epilogue: bytes = b"") -> bytes:
    return preamble + b"".join(parts) + b"--" + B + b"--\r\n" + epilogue


def field(name: bytes, value: bytes) -> bytes:
    return part(b'form-data; name="' + name + b'"', value)


def upload(name: bytes, filename: bytes, body: bytes, content_type: bytes | None = None) -> bytes:
    extra = (b"Content-Type: " + content_type,) if content_type else ()
    return part(b'form-data; name="' + name + b'"; filename="' + filename + b'"', body, *extra)


@attrs.define
class Seen:
    """Everything a reader told its relay, in order."""

    events: list[object] = attrs.Factory(list)
    data: bytearray = attrs.Factory(bytearray)
    found: int = 0

    def reader(self) -> FirstPartReader:
        return FirstPartReader(
            B,
            on_found=self._found,
            on_head=lambda head: self.events.append(head),
            on_data=self._data,
            on_end=lambda: self.events.append("end"),
            on_malformed=lambda: self.events.append("malformed"),
        )

    def _found(self) -> None:
        self.found += 1

    def _data(self, data: bytes, payload: int) -> None:
        assert payload == len(data) and data
        self.data += data

    @property
    def outcome(self) -> list[object]:
        return [e for e in self.events if e != "data"]


def read(body: bytes, splits: list[int] | None = None, end: bool = True) -> Seen:
    seen = Seen()
    reader = seen.reader()
    cuts = [0, *(splits or []), len(body)]
    for a, b in zip(cuts, cuts[1:], strict=False):
        reader.feed(body[a:b], b - a)
    if end:
        reader.finish()
    return seen


FILE = b"\r\n--not-the-boundary\r\n" + bytes(range(256)) * 40 + b"\r\n--" + B[:-1]


def every_split(body: bytes) -> list[list[int]]:
    return [[i] for i in range(1, len(body))]


# -- the boundary ---------------------------------------------------------------------


@pytest.mark.parametrize(("content_type", "boundary"), [
    (b"multipart/form-data; boundary=abc", b"abc"),
    (b"Multipart/Form-Data;boundary=\"a b:c\"", b"a b:c"),
    (b"multipart/form-data; charset=utf-8; BOUNDARY=----WebKitFormBoundaryx7Yq",
     b"----WebKitFormBoundaryx7Yq"),
    (b"multipart/form-data; boundary=" + b"x" * 70, b"x" * 70),
    (b"multipart/form-data ; ; boundary=q", b"q"),
])
def test_form_boundary(content_type: bytes, boundary: bytes) -> None:
    assert form_boundary(content_type) == boundary


@pytest.mark.parametrize("content_type", [
    None, b"", b"application/octet-stream", b"text/plain; boundary=x",
    b"multipart/mixed; boundary=x", b"multipart/form-datax; boundary=x", b"form-data",
])
def test_other_sends_are_not_forms(content_type: bytes | None) -> None:
    assert form_boundary(content_type) is None


@pytest.mark.parametrize("content_type", [
    b"multipart/form-data",
    b"multipart/form-data; boundary=",
    b'multipart/form-data; boundary=""',
    b"multipart/form-data; boundary=" + b"x" * 71,
    b'multipart/form-data; boundary="ends in space "',
    b'multipart/form-data; boundary="bad\\"quote"',
    b"multipart/form-data; boundary=semi;colon=",
    b"multipart/form-data; boundary=a\x00b",
    b"multipart/form-data; boundary=abc; junk",
    b'multipart/form-data; boundary="unterminated',
    b"multipart/form-data; boundary=caf\xc3\xa9",
])
def test_a_form_without_a_usable_boundary_is_refused(content_type: bytes) -> None:
    with pytest.raises(Refusal) as refused:
        form_boundary(content_type)
    assert refused.value.status == 400
    assert refused.value.body.startswith(b"[ERROR] ") and refused.value.body.count(b"\n") == 1


# -- which part goes through ----------------------------------------------------------


def test_the_first_file_part_goes_through_with_its_type_and_name() -> None:
    body = form(
        field(b"field1", b"ignored"),
        upload(b"file", b"a.txt", FILE, b"text/plain"),
        upload(b"extra", b"b.txt", b"second"),
        field(b"text", b"not this either"),
    )
    seen = read(body)
    assert seen.events == [PartHead(content_type="text/plain", filename="a.txt"), "end"]
    assert bytes(seen.data) == FILE
    assert seen.found == 1


@pytest.mark.parametrize("splits", every_split(form(
    field(b"a", b"x"), upload(b"f", b"n.bin", b"\r\n--" + B[:5] + b"payload\r"))))
def test_at_every_split_point(splits: list[int]) -> None:
    payload = b"\r\n--" + B[:5] + b"payload\r"
    body = form(field(b"a", b"x"), upload(b"f", b"n.bin", payload))
    seen = read(body, splits)
    assert seen.events == [PartHead(content_type=None, filename="n.bin"), "end"]
    assert bytes(seen.data) == payload


def test_seeded_random_splits() -> None:
    rng = random.Random(20261203)
    payload = bytes(rng.randrange(256) for _ in range(50_000)) + b"\r\n--" + B[:-1]
    body = form(field(b"x", b"1" * 3000), upload(b"f", b"r.bin", payload),
                upload(b"g", b"s.bin", b"later"))
    for _ in range(40):
        cuts = sorted(rng.sample(range(1, len(body)), rng.randrange(1, 60)))
        seen = read(body, cuts)
        assert bytes(seen.data) == payload
        assert seen.events[-1] == "end"


def test_an_empty_filename_is_an_unused_file_input() -> None:
    body = form(upload(b"unused", b"", b""), upload(b"used", b"u.bin", b"data"))
    seen = read(body)
    assert seen.events == [PartHead(content_type=None, filename="u.bin"), "end"]
    assert bytes(seen.data) == b"data"


def test_a_non_ascii_filename_arrives_decoded() -> None:
    seen = read(form(upload(b"f", "résumé.pdf".encode(), b"%PDF")))
    assert seen.events[0] == PartHead(content_type=None, filename="résumé.pdf")


def test_the_reader_stops_at_the_end_of_the_part() -> None:
    """What follows the forwarded part is dropped unchecked, even broken framing."""
    body = upload(b"f", b"a", b"data") + b"--" + B + b"\r\ngarbage, no colon\r\n\r\n"
    seen = read(body)
    assert seen.events == [PartHead(content_type=None, filename="a"), "end"]
    assert bytes(seen.data) == b"data"


def test_an_empty_file_part() -> None:
    seen = read(form(upload(b"f", b"empty.txt", b"")))
    assert seen.events == [PartHead(content_type=None, filename="empty.txt"), "end"]
    assert seen.data == b""


# -- the text fallback ----------------------------------------------------------------


def test_without_a_file_the_first_text_field_goes_through_when_the_body_ends() -> None:
    body = form(field(b"path", b"x"), field(b"text", b"hello\r\nworld"),
                field(b"text", b"second"))
    seen = read(body, end=False)
    assert seen.events == [] and seen.found == 1
    seen_end = read(body)
    assert seen_end.events == [PartHead(content_type=None, filename=None, text=True), "end"]
    assert bytes(seen_end.data) == b"hello\r\nworld"


def test_a_file_after_the_text_field_wins() -> None:
    seen = read(form(field(b"text", b"words"), upload(b"f", b"f.bin", b"bytes")))
    assert seen.events == [PartHead(content_type=None, filename="f.bin"), "end"]
    assert bytes(seen.data) == b"bytes"


def test_an_empty_text_field_is_still_sent() -> None:
    seen = read(form(field(b"text", b"")))
    assert seen.events == [PartHead(content_type=None, filename=None, text=True), "end"]
    assert seen.data == b""


def test_text_up_to_one_mib_is_held_and_more_is_malformed() -> None:
    exact = b"t" * MAX_TEXT
    seen = read(form(field(b"text", exact)), [100_000, 700_000])
    assert bytes(seen.data) == exact
    seen = read(form(field(b"text", exact + b"!")), [100_000, 700_000])
    assert seen.events == ["malformed"]
    assert seen.data == b""


# -- malformed ------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    b"",
    form(),
    form(field(b"a", b"only a field")),
    b"--" + B + b"\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n",
    form(field(b"text", b"held"))[:-10],
    b"no boundary anywhere in here at all, just bytes",
    b"--" + B + b"\r\nNot a header line\r\n\r\nbody\r\n--" + B + b"--\r\n",
    b"--" + B + b"\r\nContent-Type: text/plain\r\n\r\nno disposition\r\n--" + B + b"--\r\n",
    b"--" + B + b"\nContent-Disposition: form-data; name=\"a\"\n\nbare LF\n--" + B + b"--\n",
    b"--" + B + b"\r\n" + b"X-Long: " + b"h" * 5000 + b"\r\n\r\n",
])
def test_malformed_bodies(body: bytes) -> None:
    seen = read(body)
    assert seen.events == ["malformed"]
    assert seen.data == b""


def test_a_body_that_ends_inside_the_file_part_is_malformed_after_its_bytes() -> None:
    body = form(upload(b"f", b"cut.bin", b"the file part"))[:-30]
    seen = read(body)
    assert seen.events[0] == PartHead(content_type=None, filename="cut.bin")
    assert seen.events[-1] == "malformed"


def test_nothing_is_told_after_the_reader_stopped() -> None:
    seen = Seen()
    reader = seen.reader()
    reader.stop()
    reader.feed(form(upload(b"f", b"a", b"x")))
    reader.finish()
    assert seen.events == [] and seen.data == b""


def test_a_preamble_and_epilogue_are_dropped() -> None:
    seen = read(form(upload(b"f", b"a", b"x"), preamble=b"ignore me\r\n", epilogue=b"and me"))
    assert bytes(seen.data) == b"x"
    assert seen.events[-1] == "end"
