"""The kit's flows as whole HTTP exchanges in memory: per-receiver downloads,
form uploads, the video page and /noscript routing, boolean flags, repeated
X- headers. Same in-memory Site as test_routes (StringTransports, a Clock)."""

from __future__ import annotations

import pytest

from hoodypipe.settings import Settings
from tests.kit.memory_http import (
    SENDER_LINES_1,
    TEXT,
    Connection,
    Response,
    Server,
    error_body,
)

B = b"kitboundary42"
FORM_TYPE = b"Content-Type: multipart/form-data; boundary=" + B
HTML_ACCEPT = b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture
def server() -> Server:
    return Server(Settings(form_head_timeout=30.0))


def field(name: bytes, value: bytes) -> bytes:
    return (b"--" + B + b"\r\nContent-Disposition: form-data; name=\"" + name +
            b"\"\r\n\r\n" + value + b"\r\n")


def file_head(filename: bytes, content_type: bytes | None = None) -> bytes:
    head = (b"--" + B + b"\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" +
            filename + b"\"\r\n")
    if content_type is not None:
        head += b"Content-Type: " + content_type + b"\r\n"
    return head + b"\r\n"


END = b"--" + B + b"--\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def open_chunked_send(server: Server, path: bytes, *headers: bytes) -> Connection:
    return server.connect().request(b"POST", path, FORM_TYPE,
                                     b"Transfer-Encoding: chunked", *headers)


# -- multipart form uploads ------------------------------------------------------------


def test_a_form_forwards_its_first_file_part_only(server: Server) -> None:
    receiver = server.connect().request(b"GET", b"/up")
    body = (field(b"field1", b"ignored") + file_head(b"a.txt", b"text/html") +
            b"first-file-content\r\n" + file_head(b"b.txt") + b"second\r\n" + END)
    sender = server.connect().request(b"POST", b"/up", FORM_TYPE, body=body)
    got = receiver.response()
    assert got.status == 200
    assert got.body == b"first-file-content"
    assert got.header(b"transfer-encoding") == b"chunked"
    assert got.header(b"content-length") is None
    assert got.header(b"content-type") == b"text/plain"  # HTML is never served as HTML
    assert got.header(b"content-disposition") == b'attachment; filename="a.txt"'
    assert sender.response().lines == SENDER_LINES_1
    (done,) = server.observer.done
    assert (done.ok, done.bytes, done.total_bytes) == (True, 18, None)


def test_the_receivers_are_answered_when_the_part_headers_arrive(server: Server) -> None:
    receiver = server.connect().request(b"GET", b"/up")
    sender = open_chunked_send(server, b"/up?size=2Ki")
    sender.send(chunk(field(b"a", b"x" * 500) + b"--" + B + b"\r\nContent-Disposition: "))
    assert server.registry.status("up").state == "streaming"
    assert receiver.output == b""
    sender.send(chunk(b'form-data; name="f"; filename="v.bin"\r\n\r\nabc'))
    head = receiver.output
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Type: application/octet-stream\r\n" in head
    assert b'Content-Disposition: attachment; filename="v.bin"\r\n' in head
    sender.send(chunk(b"def\r\n" + END) + b"0\r\n\r\n")
    assert receiver.response().body == b"abcdef"
    (done,) = server.observer.done
    assert (done.ok, done.bytes, done.total_bytes) == (True, 6, 2048)


def test_per_receiver_disposition_applies_to_the_part(server: Server) -> None:
    plain = server.connect().request(b"GET", b"/dir/up?n=2&download=0")
    named = server.connect().request(b"GET", b"/dir/up?n=2&filename=report.bin")
    body = file_head(b"orig.bin") + b"bytes\r\n" + END
    server.connect().request(b"POST", b"/dir/up?n=2", FORM_TYPE, body=body)
    assert plain.response().header(b"content-disposition") is None
    assert named.response().header(b"content-disposition") == (
        b'attachment; filename="report.bin"')
    assert plain.response().body == named.response().body == b"bytes"


def test_the_text_field_goes_through_when_there_is_no_file(server: Server) -> None:
    receiver = server.connect().request(b"GET", b"/t?download")
    body = field(b"path", b"t") + field(b"text", b"hello, world") + END
    sender = server.connect().request(b"POST", b"/t", FORM_TYPE, b"X-Piping: meta", body=body)
    got = receiver.response()
    assert got.body == b"hello, world"
    assert got.header(b"content-type") == b"text/plain; charset=utf-8"
    assert got.header(b"content-disposition") == b'attachment; filename="t"'
    assert got.header(b"x-piping") == b"meta"
    assert sender.response().lines == SENDER_LINES_1


def test_a_form_without_a_usable_boundary_is_400_at_once(server: Server) -> None:
    sender = server.connect().request(
        b"POST", b"/nb", b"Content-Type: multipart/form-data", body=b"whatever")
    response = sender.response()
    assert response.status == 400
    assert b"boundary" in error_body(response)
    assert server.registry.status("nb").state == "idle"


def malformed_exchange(server: Server, body: bytes) -> tuple[Response, Connection]:
    receiver = server.connect().request(b"GET", b"/bad")
    sender = server.connect().request(b"POST", b"/bad", FORM_TYPE, body=body)
    return receiver.response(), sender


@pytest.mark.parametrize("body", [
    field(b"only", b"a field") + END,
    b"no multipart here at all",
    b"--" + B + b"\r\nbroken header\r\n\r\n",
])
def test_a_malformed_form_answers_waiting_receivers_with_400(
    server: Server, body: bytes,
) -> None:
    got, sender = malformed_exchange(server, body)
    assert got.status == 400
    assert error_body(got) == b"[ERROR] Malformed multipart body.\n"
    assert sender.response().lines[-1] == "[ERROR] Malformed multipart body."
    (done,) = server.observer.done
    assert (done.ok, done.reason, done.bytes) == (False, "Malformed multipart body", 0)


def test_a_form_cut_inside_its_file_aborts_the_streaming_receiver(server: Server) -> None:
    receiver = server.connect().request(b"GET", b"/cut")
    sender = open_chunked_send(server, b"/cut")
    sender.send(chunk(file_head(b"x.bin") + b"partial"))
    assert receiver.output.startswith(b"HTTP/1.1 200 OK")
    sender.send(b"0\r\n\r\n")
    assert receiver.transport.disconnected  # aborted, never a clean end
    assert not receiver.responses()[0].complete
    assert sender.response().lines[-1] == "[ERROR] Malformed multipart body."
    (done,) = server.observer.done
    assert (done.ok, done.reason) == (False, "Malformed multipart body")


def test_no_forwardable_part_within_30_s_is_malformed(server: Server) -> None:
    receiver = server.connect().request(b"GET", b"/slow")
    sender = open_chunked_send(server, b"/slow")
    sender.send(chunk(field(b"a", b"b")))
    server.reactor.advance(29.9)
    assert receiver.output == b""
    server.reactor.advance(0.2)
    assert error_body(receiver.response()) == b"[ERROR] Malformed multipart body.\n"
    assert receiver.response().status == 400
    assert "[ERROR] Malformed multipart body." in sender.output.decode()
    (done,) = server.observer.done
    assert done.reason == "Malformed multipart body"


def test_a_text_field_stops_the_30_s_clock(server: Server) -> None:
    receiver = server.connect().request(b"GET", b"/slowtext")
    sender = open_chunked_send(server, b"/slowtext")
    sender.send(chunk(field(b"text", b"hi")))
    server.reactor.advance(60)
    assert receiver.output == b""
    sender.send(chunk(END) + b"0\r\n\r\n")
    assert receiver.response().body == b"hi"


def test_a_file_part_stops_the_30_s_clock(server: Server) -> None:
    receiver = server.connect().request(b"GET", b"/slowfile")
    sender = open_chunked_send(server, b"/slowfile")
    sender.send(chunk(file_head(b"f") + b"a"))
    server.reactor.advance(60)
    sender.send(chunk(b"b\r\n" + END) + b"0\r\n\r\n")
    assert receiver.response().body == b"ab"
    assert server.observer.done[0].ok


# -- ordinary sends: headers per receiver --------------------------------------------------


def test_n2_one_receiver_downloads_and_the_other_shows_inline(server: Server) -> None:
    inline = server.connect().request(b"GET", b"/pics/cat.png?n=2")
    download = server.connect().request(b"GET", b"/pics/cat.png?n=2&download")
    server.connect().request(b"PUT", b"/pics/cat.png?n=2", b"Content-Type: image/png",
                             body=b"\x89PNG")
    assert inline.response().header(b"content-disposition") is None
    assert download.response().header(b"content-disposition") == (
        b'attachment; filename="cat.png"')


def test_n2_download_off_drops_the_senders_disposition_for_one_receiver(
    server: Server,
) -> None:
    kept = server.connect().request(b"GET", b"/d?n=2")
    dropped = server.connect().request(b"GET", b"/d?n=2&download=FALSE")
    server.connect().request(b"PUT", b"/d?n=2",
                             b'Content-Disposition: attachment; filename="leaked.txt"',
                             body=b"x")
    assert kept.response().header(b"content-disposition") == (
        b'attachment; filename="leaked.txt"')
    assert dropped.response().header(b"content-disposition") is None


def test_every_x_piping_value_arrives_in_order(server: Server) -> None:
    receiver = server.connect().request(b"GET", b"/x")
    server.connect().request(b"PUT", b"/x", b"X-Piping: one", b"X-Hoody-Pipe: a",
                             b"X-Piping: two", b"X-Hoody-Pipe: b", body=b"x")
    got = receiver.response()
    assert got.headers[b"x-piping"] == [b"one", b"two"]
    assert got.headers[b"x-hoody-pipe"] == [b"a", b"b"]
    assert got.headers[b"access-control-expose-headers"] == [
        b"X-Hoody-Pipe-Transfer-Id, X-Piping, X-Hoody-Pipe"]
    assert len(got.headers[b"x-hoody-pipe-transfer-id"]) == 1


# -- routing: pages and flags ---------------------------------------------------------------


def test_api_prefix_without_a_slash_is_the_index(server: Server) -> None:
    page = server.get(b"/api/v1/pipe")
    assert page.status == 200
    assert page.body.startswith(b"hoodypipe:")
    html = server.get(b"/api/v1/pipe", HTML_ACCEPT)
    assert html.header(b"content-type") == b"text/html; charset=utf-8"
    assert server.registry.status("api/v1/pipe").state == "idle"
    refused = server.connect().request(b"POST", b"/api/v1/pipe", body=b"x").response()
    assert refused.status == 400
    assert server.registry.waiting_count() == 0


@pytest.mark.parametrize("path", [b"/noscript", b"/api/v1/pipe/noscript"])
def test_noscript_is_a_reserved_page(server: Server, path: bytes) -> None:
    page = server.get(path + b"?path=a%20b/c!&mode=text")
    assert page.status == 200
    assert page.header(b"content-type") == b"text/html; charset=utf-8"
    assert b'action="/api/v1/pipe/ab/c"' in page.body
    assert b"<script" not in page.body
    assert b"form-action 'self'" in (page.header(b"content-security-policy") or b"")
    refused = server.connect().request(b"POST", path, body=b"x").response()
    assert refused.status == 400
    assert server.registry.waiting_count() == 0


def test_video_for_a_browser_is_the_player_page_and_takes_no_slot(server: Server) -> None:
    page = server.get(b"/cam?video", HTML_ACCEPT)
    assert page.status == 200
    assert page.header(b"content-type") == b"text/html; charset=utf-8"
    assert b"media-src blob:" in (page.header(b"content-security-policy") or b"")
    assert page.header(b"vary") == b"Accept"
    assert b"MediaSource" in page.body
    assert server.registry.status("cam").state == "idle"


@pytest.mark.parametrize(("query", "accept"), [
    (b"video", b"Accept: */*"),
    (b"video=1", b"Accept: video/webm,*/*"),
    (b"video=no", HTML_ACCEPT),
    (b"video=0", HTML_ACCEPT),
    (b"video=False", HTML_ACCEPT),
    (b"progress=0", HTML_ACCEPT),
    (b"progress=false", b"Accept: text/event-stream"),
    (b"progress=NO", b"Accept: */*"),
])
def test_these_are_ordinary_receivers(server: Server, query: bytes, accept: bytes) -> None:
    receiver = server.connect().request(b"GET", b"/r?" + query, accept)
    assert receiver.output == b""
    assert server.registry.status("r").state == "waiting"
    server.connect().request(b"PUT", b"/r", body=b"payload")
    assert receiver.response().body == b"payload"


def test_progress_with_a_true_value_is_still_a_spectator(server: Server) -> None:
    for value in (b"", b"=1", b"=yes", b"=TRUE"):
        response = server.get(b"/w?progress" + value, b"Accept: application/json")
        assert response.status == 200
        assert response.header(b"content-type") != TEXT
    assert server.registry.status("w").state == "idle"
