"""Whole HTTP exchanges in memory: the real Site, StringTransports, a Clock
(the in-memory server and response reader are in ``tests/kit/memory_http.py``)."""

from __future__ import annotations

import json

import pytest
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure

from tests.kit.memory_http import (
    SENDER_LINES_1,
    TEXT,
    Server,
    error_body,
    parse_responses,
)

PIPE_ALLOW = b"GET, HEAD, POST, PUT, OPTIONS"
PAGE_ALLOW = b"GET, HEAD, OPTIONS"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@pytest.fixture
def server() -> Server:
    return Server()


# -- methods and reserved paths -------------------------------------------------------


@pytest.mark.parametrize("path", [b"/mypipe", b"/api/v1/pipe/mypipe", b"/a/b"])
@pytest.mark.parametrize("method", [b"DELETE", b"PATCH", b"TRACE"])
def test_other_methods_on_a_pipe_are_405_with_allow(
    server: Server, method: bytes, path: bytes,
) -> None:
    response = server.connect().request(method, path).response()
    assert response.status == 405
    assert response.header(b"allow") == PIPE_ALLOW
    assert error_body(response) == b"[ERROR] Method %s is not allowed.\n" % method
    assert response.header(b"x-content-type-options") == b"nosniff"
    assert server.registry.waiting_count() == 0


def test_head_on_a_pipe_without_status_is_405(server: Server) -> None:
    conn = server.connect().request(b"HEAD", b"/mypipe")
    (response,) = conn.responses(head=(0,))
    assert response.status == 405
    assert response.header(b"allow") == PIPE_ALLOW
    assert server.registry.status("mypipe").state == "idle"


def test_other_methods_on_a_page_are_405_with_page_allow(server: Server) -> None:
    response = server.connect().request(b"DELETE", b"/help").response()
    assert response.status == 405
    assert response.header(b"allow") == PAGE_ALLOW
    assert error_body(response) == b"[ERROR] Method DELETE is not allowed.\n"


@pytest.mark.parametrize("path", [b"/help", b"/robots.txt", b"/favicon.ico", b"/",
                                  b"/api/v1/pipe/help"])
@pytest.mark.parametrize("method", [b"POST", b"PUT"])
def test_sending_to_a_reserved_path_is_400(
    server: Server, method: bytes, path: bytes,
) -> None:
    response = server.connect().request(method, path, body=b"data").response()
    assert response.status == 400
    assert error_body(response) == b"[ERROR] Cannot send to a reserved path.\n"
    assert server.registry.waiting_count() == 0
    assert server.registry.status(path.rsplit(b"/", 1)[-1].decode()).state == "idle"


def test_help_is_built_from_the_request_host(server: Server) -> None:
    conn = server.connect().send(
        b"GET /help HTTP/1.1\r\nHost: pipes.example.org:8080\r\n\r\n")
    response = conn.response()
    assert response.status == 200
    assert response.header(b"content-type") == TEXT
    text = response.body.decode()
    assert "  curl -T myfile http://pipes.example.org:8080/mypath\n" in text
    assert "  curl http://pipes.example.org:8080/mypath > myfile\n" in text
    assert 'curl -N "http://pipes.example.org:8080/mypath?progress"' in text
    assert "http://pipes.example.org:8080/api/v1/pipe/mypath" in text
    assert "localhost" not in text


def test_help_behind_a_tls_proxy_and_with_a_hostile_host(server: Server) -> None:
    text = server.get(b"/help", b"X-Forwarded-Proto: https").body.decode()
    assert "curl -T myfile https://pipes.test/mypath" in text
    # Not a host at all: refused before any page is built (RFC 9112 section 3.2).
    conn = server.connect().send(
        b'GET /help HTTP/1.1\r\nHost: evil.test"><script>x</script>\r\n\r\n')
    assert conn.response().status == 400
    # In the grammar but odd: the help text keeps only the plain characters.
    conn = server.connect().send(
        b"GET /help HTTP/1.1\r\nHost: evil.test'(x)*!$&;=,+\r\n\r\n")
    text = conn.response().body.decode()
    assert "curl -T myfile http://evil.testx/mypath" in text
    assert "'" not in text.split("curl -T myfile ")[1][:30]


def test_robots_and_health(server: Server) -> None:
    robots = server.get(b"/robots.txt")
    assert (robots.status, robots.body) == (200, b"User-agent: *\nDisallow: /\n")
    health = server.get(b"/api/v1/pipe/health")
    assert health.status == 200
    assert health.header(b"content-type") == b"application/json"
    body = json.loads(health.body)
    assert (body["status"], body["waiting"], body["active"], body["draining"]) == (
        "ok", 0, 0, False)


@pytest.mark.parametrize("path", [b"/mypipe", b"/api/v1/pipe/mypipe", b"/help"])
def test_options_preflight(server: Server, path: bytes) -> None:
    response = server.connect().request(
        b"OPTIONS", path, b"Origin: https://app.test",
        b"Access-Control-Request-Method: PUT",
        b"Access-Control-Request-Headers: x-piping, content-type").response()
    assert response.status == 204
    assert response.body == b""
    assert response.header(b"access-control-allow-origin") == b"*"
    assert response.header(b"access-control-allow-methods") == PIPE_ALLOW
    assert response.header(b"access-control-allow-headers") == (
        b"x-piping, content-type")
    assert response.header(b"access-control-max-age") == b"86400"
    assert server.registry.waiting_count() == 0


def test_options_preflight_without_asked_headers_lists_ours(server: Server) -> None:
    response = server.connect().request(b"OPTIONS", b"/mypipe").response()
    allowed = response.header(b"access-control-allow-headers") or b""
    for name in (b"Content-Type", b"Content-Disposition", b"X-Piping", b"X-Hoody-Pipe"):
        assert name in allowed


# -- names and parameters over HTTP -------------------------------------------------------


def test_name_too_long_is_414(server: Server) -> None:
    ok = server.connect().request(b"GET", b"/" + b"a" * 1024 + b"?wait=1")
    assert ok.output == b""  # waiting for a sender: a valid name
    response = server.get(b"/" + b"a" * 1025)
    assert response.status == 414
    assert error_body(response) == b"[ERROR] Path too long (max 1024 characters).\n"


@pytest.mark.parametrize("path", [b"/a%2Fb", b"/a%2fb", b"/a//b", b"/a/../b",
                                  b"/a%00b", b"/%2e%2e", b"/a%5Cb",
                                  b"/api/v1/pipe/a%2Fb"])
def test_bad_names_are_400(server: Server, path: bytes) -> None:
    response = server.get(path)
    assert response.status == 400
    assert error_body(response).startswith(b"[ERROR] ")
    assert server.registry.waiting_count() == 0


@pytest.mark.parametrize("query", [b"n=0", b"n=257", b"n=abc", b"wait=abc", b"wait=0",
                                   b"wait=1.5", b"wait", b"n=1.5", b"size=1X"])
def test_bad_parameters_are_400_and_register_nothing(server: Server, query: bytes) -> None:
    receiver = server.get(b"/p?" + query)
    assert receiver.status == 400
    error_body(receiver)
    sender = server.connect().request(b"POST", b"/p?" + query, body=b"x").response()
    assert sender.status == 400
    error_body(sender)
    assert server.registry.waiting_count() == 0


# Regression (fixed in 7993d3f): urllib's parse_qs on bytes re-encoded values as
# ASCII, so a %80-%FF escape raised out of dataReceived: no response at all.
@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"GET /help?lang=%C3%A9 HTTP/1.1\r\nHost: a\r\n\r\n", 200),
    (b"GET /robots.txt?x=%FF HTTP/1.1\r\nHost: a\r\n\r\n", 200),
    (b"POST /help?x=%FF HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx", 400),
], ids=["help-utf8", "robots-latin1", "send-latin1"])
def test_a_non_ascii_escape_in_the_query_is_answered(
    server: Server, request_bytes: bytes, status: int,
) -> None:
    conn = server.connect().send(request_bytes)
    (response,) = conn.responses()
    assert response.status == status


def test_a_non_ascii_query_value_reaches_a_pipe(server: Server) -> None:
    receiver = server.connect().request(b"GET", b"/q?note=%C3%A9%FF&wait=%35")
    server.reactor.advance(4.9)
    assert receiver.output == b""
    server.reactor.advance(0.1)  # wait=%35 is wait=5
    assert receiver.response().status == 408


# Regression (fixed in 7993d3f): this crashed in the query parser, then in
# parse_party (str.isdigit).
def test_a_superscript_digit_in_the_query_is_400(server: Server) -> None:
    response = server.get(b"/p?n=%B2")
    assert response.status == 400
    assert error_body(response) == b"[ERROR] n must be a whole number from 1 to 256.\n"


# -- transfers -----------------------------------------------------------------------------




def test_round_trip_with_content_length(server: Server) -> None:
    receiver = server.connect().request(b"GET", b"/api/v1/pipe/doc")
    assert receiver.output == b""
    payload = b"<script>alert(1)</script>\r\n0\r\n\r\n" * 10
    sender = server.connect().request(
        b"PUT", b"/doc", b"Content-Type: text/html; charset=utf-8",
        b"Content-Disposition: inline", b"X-Piping: one", b"X-Hoody-Pipe: two",
        b"X-Secret: no", body=payload)
    got = receiver.response()
    assert got.status == 200
    assert got.body == payload
    assert got.header(b"content-length") == b"%d" % len(payload)
    assert got.header(b"content-type") == b"text/plain; charset=utf-8"
    assert got.header(b"content-disposition") == b"attachment"
    assert got.header(b"x-piping") == b"one"
    assert got.header(b"x-hoody-pipe") == b"two"
    assert got.header(b"x-secret") is None
    assert got.header(b"x-content-type-options") == b"nosniff"
    assert got.header(b"x-robots-tag") == b"none"
    assert got.header(b"access-control-allow-origin") == b"*"
    assert got.header(b"access-control-expose-headers") == (
        b"X-Hoody-Pipe-Transfer-Id, X-Piping, X-Hoody-Pipe")
    (done,) = server.observer.done
    assert got.header(b"x-hoody-pipe-transfer-id") == done.transfer_id.encode()
    status = sender.response()
    assert status.status == 200
    assert status.header(b"content-type") == TEXT
    assert status.complete
    assert status.lines == SENDER_LINES_1
    assert (done.ok, done.bytes, done.total_bytes, done.reason) == (
        True, len(payload), len(payload), None)
    assert server.registry.status("doc").state == "idle"
    assert server.registry.active_count() == 0


def test_round_trip_sender_first_with_the_body_already_in(server: Server) -> None:
    sender = server.connect().request(b"POST", b"/early", body=b"hello")
    assert sender.responses()[0].lines == [
        "[INFO] Waiting for 1 receiver(s) to connect..."]
    receiver = server.connect().request(b"GET", b"/early")
    assert receiver.response().body == b"hello"
    assert sender.response().lines == [
        "[INFO] Waiting for 1 receiver(s) to connect...",
        "[INFO] A receiver connected.",
        "[INFO] Streaming to 1 receiver(s)...",
        "[INFO] Upload complete.",
        "[INFO] Transfer complete.",
    ]


def test_round_trip_three_receivers(server: Server) -> None:
    receivers = [server.connect().request(b"GET", b"/fan?n=3") for _ in range(2)]
    sender = server.connect().send(
        b"POST /fan?n=3 HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc")
    assert all(r.output == b"" for r in receivers)
    receivers.append(server.connect().request(b"GET", b"/fan?n=3"))
    sender.send(b"def")
    assert [r.response().body for r in receivers] == [b"abcdef"] * 3
    assert sender.response().lines[-3:] == [
        "[INFO] Streaming to 3 receiver(s)...",
        "[INFO] Upload complete.",
        "[INFO] Transfer complete.",
    ]


CHUNKED_BODY = (b"5;name=value\r\nhello\r\n000B\r\n, world and\r\n1\r\n!\r\n"
                b"0\r\nX-Trailer: t\r\n\r\n")


def test_chunked_send_to_an_http11_receiver(server: Server) -> None:
    receiver = server.connect().request(b"GET", b"/ch")
    sender = server.connect().request(b"POST", b"/ch?size=17",
                                      b"Transfer-Encoding: chunked")
    for i in range(0, len(CHUNKED_BODY), 7):  # in small, awkward reads
        sender.send(CHUNKED_BODY[i:i + 7])
    got = receiver.response()
    assert got.complete
    assert got.body == b"hello, world and!"
    assert got.header(b"transfer-encoding") == b"chunked"
    assert got.header(b"content-length") is None
    assert b";" not in got.raw_body and b"X-Trailer" not in got.raw_body
    assert got.raw_body.endswith(b"!\r\n0\r\n\r\n")
    assert sender.response().lines == SENDER_LINES_1
    (done,) = server.observer.done
    assert (done.ok, done.bytes, done.total_bytes) == (True, 17, 17)


# Regression (fixed in 7993d3f): decode was never passed to the body, so an
# HTTP/1.0 receiver got the chunk framing inside its body.
@pytest.mark.parametrize("versions", [
    (b"HTTP/1.0",), (b"HTTP/1.1", b"HTTP/1.0"),
], ids=["http10", "mixed"])
def test_chunked_send_to_an_http10_receiver_gets_the_plain_payload(
    server: Server, versions: tuple[bytes, ...],
) -> None:
    n = b"%d" % len(versions)
    receivers = [server.connect().request(b"GET", b"/old?n=" + n, version=v)
                 for v in versions]
    sender = server.connect().request(b"POST", b"/old?n=" + n,
                                      b"Transfer-Encoding: chunked")
    sender.send(CHUNKED_BODY)
    for receiver, version in zip(receivers, versions, strict=True):
        (got,) = receiver.responses()
        assert got.version == version
        assert got.body == b"hello, world and!"
        assert got.complete
    (done,) = server.observer.done
    assert (done.ok, done.bytes) == (True, 17)


def test_chunked_send_to_an_http10_receiver_is_ended_by_closing(server: Server) -> None:
    receiver = server.connect().request(b"GET", b"/old", version=b"HTTP/1.0")
    sender = server.connect().request(b"POST", b"/old", b"Transfer-Encoding: chunked")
    sender.send(CHUNKED_BODY)
    assert receiver.transport.disconnecting
    assert not receiver.transport.disconnected  # closed, not aborted
    assert receiver.responses()[0].header(b"transfer-encoding") is None


def test_sender_dropping_mid_stream_aborts_the_receivers(server: Server) -> None:
    receiver = server.connect().request(b"GET", b"/cut")
    sender = server.connect().send(
        b"POST /cut HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
    assert receiver.response().body == b"hello"
    assert not receiver.transport.disconnecting
    sender.drop()
    assert receiver.transport.disconnected  # aborted, never a clean end
    assert not receiver.response().complete
    (done,) = server.observer.done
    assert (done.ok, done.bytes, done.reason) == (False, 5, "Sender disconnected")
    receiver.drop()
    assert server.registry.status("cut").state == "idle"
    assert server.registry.active_count() == 0


def test_chunked_sender_dropping_leaves_the_body_unterminated(server: Server) -> None:
    receiver = server.connect().request(b"GET", b"/cut")
    sender = server.connect().request(b"POST", b"/cut", b"Transfer-Encoding: chunked")
    sender.send(b"5\r\nhello\r\n")
    sender.drop()
    assert receiver.transport.disconnected
    got = receiver.response()
    assert got.body == b"hello" and not got.complete


def test_receiver_dropping_tells_the_sender_and_the_last_one_fails_it(
    server: Server,
) -> None:
    first = server.connect().request(b"GET", b"/two?n=2")
    second = server.connect().request(b"GET", b"/two?n=2")
    sender = server.connect().request(b"POST", b"/two?n=2",
                                      b"Transfer-Encoding: chunked")
    sender.send(b"3\r\nabc\r\n")
    first.drop()
    assert sender.responses()[0].lines[-1] == "[INFO] A receiver disconnected."
    assert server.registry.status("two").receivers == 1
    sender.send(b"2\r\nde\r\n")
    assert second.response().body == b"abcde"
    second.drop()
    status = sender.responses()[0]
    assert status.lines[-1] == (
        "[ERROR] All receivers disconnected before transfer completed.")
    assert status.complete  # the status body itself ends cleanly
    assert sender.transport.write_closed  # the upload was still coming
    (done,) = server.observer.done
    assert (done.ok, done.reason) == (
        False, "All receivers disconnected before transfer completed")


# -- waiting over HTTP ---------------------------------------------------------------------


def test_receiver_wait_timeout_is_408(server: Server) -> None:
    receiver = server.connect().request(b"GET", b"/w?wait=5")
    server.reactor.advance(4.9)
    assert receiver.output == b""
    server.reactor.advance(0.1)
    response = receiver.response()
    assert response.status == 408
    assert error_body(response) == b"[ERROR] Timed out waiting for sender.\n"
    assert server.registry.status("w").state == "idle"


def test_sender_wait_timeout_ends_its_status_body(server: Server) -> None:
    sender = server.connect().request(b"POST", b"/w?wait=65", body=b"payload")
    server.reactor.pump([0.1] * 649)  # 64.9 s, in steps, as a reactor would
    assert sender.responses()[0].lines == [
        "[INFO] Waiting for 1 receiver(s) to connect...",
        "[INFO] Still waiting for 1 receiver(s)...",
        "[INFO] Still waiting for 1 receiver(s)...",
    ]
    server.reactor.advance(0.1)
    status = sender.response()
    assert status.complete
    assert status.lines[-1] == "[ERROR] Timed out waiting for receivers."
    assert not sender.transport.write_closed  # the body was all in: keep-alive
    (done,) = server.observer.done
    assert (done.ok, done.reason) == (False, "Timed out waiting for receivers")


def test_sender_wait_timeout_with_the_upload_still_coming_lingers(
    server: Server,
) -> None:
    sender = server.connect().request(b"POST", b"/w?wait=5",
                                      b"Transfer-Encoding: chunked")
    sender.send(b"3\r\nabc\r\n")
    server.reactor.advance(5)
    status = sender.response()
    assert status.complete
    assert status.lines[-1] == "[ERROR] Timed out waiting for receivers."
    assert sender.transport.write_closed
    assert not sender.transport.disconnected
    sender.send(b"3\r\ndef\r\n")  # read and dropped while lingering
    assert sender.response() == status
    server.reactor.advance(5)
    assert sender.transport.disconnected  # the lingering close ran out


def test_a_second_sender_is_400(server: Server) -> None:
    server.connect().request(b"POST", b"/busy", body=b"first")
    response = server.connect().request(b"POST", b"/busy", body=b"second").response()
    assert response.status == 400
    assert error_body(response) == (
        b"[ERROR] Another sender is already connected on this path.\n")


# -- one connection, several requests -------------------------------------------------------


def test_pipelined_get_after_a_small_post_is_answered_in_order(server: Server) -> None:
    conn = server.connect().send(
        b"POST /robots.txt HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /help HTTP/1.1\r\nHost: second.test\r\n\r\n"
        b"GET /robots.txt HTTP/1.1\r\nHost: a\r\n\r\n")
    first, second, third = conn.responses()
    assert first.status == 400
    assert error_body(first) == b"[ERROR] Cannot send to a reserved path.\n"
    assert second.status == 200 and b"http://second.test/mypath" in second.body
    assert third.body == b"User-agent: *\nDisallow: /\n"
    assert not conn.transport.disconnecting


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_pipelined_get_after_a_send_waits_for_the_transfer(
    server: Server, chunked: bool,
) -> None:
    if chunked:
        send = (b"POST /pp HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n0\r\n\r\n")
    else:
        send = b"POST /pp HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
    conn = server.connect().send(send + b"GET /robots.txt HTTP/1.1\r\nHost: a\r\n\r\n")
    (waiting,) = conn.responses()
    assert not waiting.complete
    receiver = server.connect().request(b"GET", b"/pp")
    assert receiver.response().body == b"hello"
    status, robots = conn.responses()
    assert status.lines == [
        "[INFO] Waiting for 1 receiver(s) to connect...",
        "[INFO] A receiver connected.",
        "[INFO] Streaming to 1 receiver(s)...",
        "[INFO] Upload complete.",
        "[INFO] Transfer complete.",
    ]
    assert status.complete
    assert robots.status == 200
    assert robots.body == b"User-agent: *\nDisallow: /\n"
    assert not conn.transport.disconnecting


def test_expect_100_continue_comes_before_the_status_line(server: Server) -> None:
    conn = server.connect()
    conn.protocol.dataReceived(
        b"POST /cont HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
        b"Content-Length: 5\r\n\r\n")
    assert conn.output == CONTINUE  # rendering starts a turn later
    server.reactor.advance(0)
    assert conn.output.startswith(CONTINUE + b"HTTP/1.1 200 OK\r\n")
    interim, status = conn.responses()
    assert interim.status == 100
    assert status.lines == ["[INFO] Waiting for 1 receiver(s) to connect..."]
    conn.send(b"hello")
    receiver = server.connect().request(b"GET", b"/cont")
    assert receiver.response().body == b"hello"
    assert conn.output.count(b"100 Continue") == 1


def test_expect_100_continue_on_a_refused_send(server: Server) -> None:
    conn = server.connect()
    conn.send(b"POST /help HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
              b"Content-Length: 5\r\n\r\n")
    assert conn.output.startswith(CONTINUE + b"HTTP/1.1 400 Bad Request\r\n")
    interim, refused = conn.responses()
    assert error_body(refused) == b"[ERROR] Cannot send to a reserved path.\n"


def test_a_connection_closed_while_waiting_frees_the_slot(server: Server) -> None:
    receiver = server.connect().request(b"GET", b"/gone")
    sender = server.connect().request(b"POST", b"/gone2", body=b"x")
    assert server.registry.waiting_count() == 2
    receiver.drop()
    sender.protocol.connectionLost(Failure(ConnectionDone()))
    assert server.registry.waiting_count() == 0
    assert [(d.name, d.reason) for d in server.observer.done] == [
        ("gone2", "Sender disconnected")]


def test_a_bug_while_handling_a_send_answers_one_line_and_never_parses_the_body(
    server: Server, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unexpected error must not finish a keep-alive send mid-body (smuggling)."""
    import hoodypipe.web.routes

    def broken(value: bytes | None) -> int | None:
        raise RuntimeError("bug")

    monkeypatch.setattr(hoodypipe.web.routes, "content_length", broken)
    sender = server.connect().request(b"PUT", b"/bug", b"Content-Length: 1000")
    sender.send(b"GET /help HTTP/1.1\r\nHost: smuggled\r\n\r\n")
    responses = parse_responses(sender.transport.value())
    assert [r.status for r in responses] == [500]
    assert responses[0].body == b"[ERROR] Internal server error.\n"
    assert b"smuggled" not in sender.transport.value()
    assert sender.transport.write_closed
