"""The HTTP channel in memory (the real site and service, StringTransports, a
Clock): the request deadline, the channel's own refusals, ``Connection:
close``, half-closes, the connection cap and ALPN. The same behaviours are
proven over real sockets in ``tests/live/bytepath/test_attacks.py``."""

from __future__ import annotations

import pytest
from twisted.web import http

from hoodypipe.bytepath.channel import PHRASES, RelayChannel
from hoodypipe.bytepath.request import HALF_CLOSED_LINE, LINGER_SECONDS
from hoodypipe.settings import Settings
from tests.kit.memory_http import Connection, Response, Server, parse_responses

TEXT = b"text/plain; charset=utf-8"


@pytest.fixture
def server() -> Server:
    return Server(Settings(head_timeout=3.0, connection_timeout=60.0))


def refusal(conn: Connection, status: int) -> bytes:
    """The one response on ``conn``: ``status`` with its phrase, an [ERROR]
    line, Connection: close, and the connection half-closed after it."""
    head = conn.output.split(b"\r\n", 1)[0]
    assert head == b"HTTP/1.1 %d %s" % (status, PHRASES[status])
    (response,) = conn.responses()
    assert response.status == status
    assert response.header(b"content-type") == TEXT
    assert response.header(b"connection") == b"close"
    assert response.body.startswith(b"[ERROR] ") and response.body.count(b"\n") == 1
    assert conn.transport.write_closed
    return response.body


def assert_lingers_then_closes(server: Server, conn: Connection) -> None:
    """What the client still sends is dropped; the connection ends after the linger."""
    before = conn.output
    conn.send(b"GET /help HTTP/1.1\r\nHost: t\r\n\r\n")
    assert conn.output == before
    assert not conn.transport.disconnected
    server.reactor.advance(LINGER_SECONDS)
    assert conn.transport.disconnected


# -- the request deadline ---------------------------------------------------------------


def test_a_trickled_head_gets_408_at_the_deadline(server: Server) -> None:
    conn = server.connect()
    for byte in b"GET /x HTTP/1.1\r\nHost: t\r\nX-Slow: ":
        conn.send(bytes([byte]))
        server.reactor.advance(0.05)  # each byte well inside the idle timeout
    assert conn.output == b""
    server.reactor.advance(3.0)
    body = refusal(conn, 408)
    assert body == b"[ERROR] Request not received within 3 seconds.\n"
    assert_lingers_then_closes(server, conn)


def test_the_deadline_runs_from_the_first_byte_not_the_last(server: Server) -> None:
    conn = server.connect()
    conn.send(b"G")
    for _ in range(29):
        server.reactor.advance(0.1)
        conn.send(b"E" if _ == 0 else b"")
    server.reactor.advance(0.11)
    assert conn.output.startswith(b"HTTP/1.1 408 ")


def test_a_silent_connection_is_left_to_the_idle_timer(server: Server) -> None:
    conn = server.connect()
    server.reactor.advance(30)
    assert conn.output == b"" and not conn.transport.disconnecting
    server.reactor.advance(31)  # the 60 s connection timeout: closed, no answer
    assert conn.output == b"" and conn.transport.disconnecting


def test_each_request_on_a_keep_alive_connection_gets_its_own_deadline(
    server: Server,
) -> None:
    conn = server.connect()
    for _ in range(3):
        server.reactor.advance(2.5)
        conn.request(b"GET", b"/robots.txt")
    assert [r.status for r in conn.responses()] == [200, 200, 200]
    conn.send(b"GET /robots.txt HTTP/1.1\r\n")
    server.reactor.advance(3.0)
    assert conn.responses()[-1].status == 408


def test_a_trickled_body_of_a_get_is_inside_the_deadline(server: Server) -> None:
    conn = server.connect().send(b"GET /help HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n")
    conn.send(b"x")
    server.reactor.advance(3.0)
    refusal(conn, 408)


def test_a_send_body_is_timed_by_the_registry_not_the_deadline(server: Server) -> None:
    conn = server.connect().send(b"PUT /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n")
    server.reactor.advance(10)
    (response,) = conn.responses()
    assert response.status == 200 and not response.complete
    assert b"408" not in conn.output


# -- the channel's own refusals ---------------------------------------------------------


@pytest.mark.parametrize("request_bytes, status, message", [
    (b"GET /x HTTP/1.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", 431,
     b"Header field too long (max 16384 bytes)."),
    (b"GET /" + b"a" * 16_500 + b" HTTP/1.1\r\n\r\n", 414,
     b"Request line too long (max 16384 bytes)."),
    (b"GET /x?" + b"q" * 100_000 + b" HTTP/1.1\r\n\r\n", 414,
     b"Request line too long (max 16384 bytes)."),
    (b"GET /x HTTP/1.1\r\n" + b"X-A: b\r\n" * 10_000 + b"\r\n", 431,
     b"Too many header fields (max 500)."),
    (b"GET /x HTTP/1.1\r\n" + (b"X-Padding: " + b"p" * 60 + b"\r\n") * 300 + b"\r\n", 431,
     b"Request header fields too large (max 16384 bytes)."),
    (b"GET /x HTTP/1.1\r\n" + b"A:\r\n" * 600 + b"\r\n", 431,
     b"Too many header fields (max 500)."),
    (b"GET /\xc3\xa9 HTTP/1.1\r\n\r\n", 400, b"Malformed request line."),
    (b"GET /a\tb HTTP/1.1\r\n\r\n", 400, b"Malformed request line."),
    (b"GET\t/x HTTP/1.1\r\n\r\n", 400, b"Malformed request line."),
    (b"HELLO\r\n\r\n", 400, b"Malformed request line."),
    (b"GET /x HTTP/2.0\r\n\r\n", 400, b"Malformed request line."),
    (b"GET /x HTTP/1.1\r\nNo colon here\r\n\r\n", 400, b"Malformed header field."),
    (b"GET /x HTTP/1.1\r\nBad Name: 1\r\n\r\n", 400, b"Malformed header field."),
    (b"PUT /x HTTP/1.1\r\nContent-Length: ten\r\n\r\n", 400,
     b"Invalid Content-Length or Transfer-Encoding."),
    (b"PUT /x HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
     b"Invalid Content-Length or Transfer-Encoding."),
    (b"PUT /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400,
     b"Invalid Content-Length or Transfer-Encoding."),
    (b"GET /help HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400,
     b"Malformed chunked body."),
])
def test_what_twisted_refuses_is_an_error_line(
    server: Server, request_bytes: bytes, status: int, message: bytes,
) -> None:
    conn = server.connect().send(request_bytes)
    assert refusal(conn, status) == b"[ERROR] " + message + b"\n"
    assert_lingers_then_closes(server, conn)
    assert server.registry.waiting_count() == 0


def test_a_refusal_in_a_pipelined_stream_answers_what_came_before(server: Server) -> None:
    conn = server.connect().send(b"GET /robots.txt HTTP/1.1\r\nHost: t\r\n\r\n"
                                 b"GET /x HTTP/1.1\r\nBroken\r\n\r\n")
    first, second = conn.responses()
    assert first.status == 200 and second.status == 400
    assert second.header(b"connection") == b"close"


def test_channel_refusals_are_counted(server: Server) -> None:
    server.connect().send(b"HELLO\r\n\r\n")
    metrics = server.service.metrics.render().decode()
    assert 'hoodypipe_rejected_requests_total{reason="bad_request_line"} 1.0' in metrics


# -- Connection: close -------------------------------------------------------------------


def test_a_refused_send_with_its_body_still_coming_says_connection_close(
    server: Server,
) -> None:
    conn = server.connect().send(b"PUT /a%2Fb HTTP/1.1\r\nHost: t\r\n"
                                 b"Content-Length: 1000\r\n\r\n" + b"x" * 10)
    (response,) = conn.responses()
    assert response.status == 400 and response.header(b"connection") == b"close"
    assert conn.transport.write_closed


def test_a_refused_send_whose_body_is_in_keeps_the_connection(server: Server) -> None:
    conn = server.connect().request(b"PUT", b"/a%2Fb", body=b"x" * 10)
    conn.request(b"GET", b"/robots.txt")
    first, second = conn.responses()
    assert first.status == 400 and first.header(b"connection") is None
    assert second.status == 200 and not conn.transport.write_closed


def test_http_1_0_needs_no_connection_close(server: Server) -> None:
    conn = server.connect().request(b"GET", b"/robots.txt", version=b"HTTP/1.0")
    (response,) = parse_responses(conn.output)
    assert response.header(b"connection") is None


# -- half-close ----------------------------------------------------------------------------


def half_close(conn: Connection) -> None:
    protocol = conn.protocol
    assert isinstance(protocol, RelayChannel)
    protocol.readConnectionLost()


def test_a_sender_that_half_closes_after_its_whole_body_is_served(server: Server) -> None:
    sender = server.connect().request(b"PUT", b"/hc", body=b"all of it")
    half_close(sender)
    assert HALF_CLOSED_LINE in sender.output
    assert not sender.transport.disconnecting and not sender.transport.disconnected
    receiver = server.connect().request(b"GET", b"/hc")
    assert receiver.response().body == b"all of it"
    (response,) = sender.responses()
    assert response.complete and response.lines[-1] == "[INFO] Transfer complete."
    assert response.header(b"connection") is None  # it was sent before the FIN
    assert sender.transport.disconnecting  # closed once answered


def test_a_sender_that_half_closes_mid_body_has_left(server: Server) -> None:
    sender = server.connect().send(b"PUT /hc HTTP/1.1\r\nHost: t\r\n"
                                   b"Content-Length: 100\r\n\r\nshort")
    assert server.registry.waiting_count() == 1
    half_close(sender)
    assert sender.transport.disconnected


def test_a_receiver_that_half_closes_while_waiting_has_left(server: Server) -> None:
    receiver = server.connect().request(b"GET", b"/hc")
    half_close(receiver)
    assert receiver.transport.disconnected


def test_a_half_close_between_requests_closes_after_the_answers(server: Server) -> None:
    conn = server.connect().request(b"GET", b"/robots.txt")
    half_close(conn)
    assert conn.transport.disconnecting and not conn.transport.disconnected
    assert conn.response().status == 200


# -- the site: connection cap, ALPN ------------------------------------------------------


def test_connections_over_the_cap_get_503_and_are_closed() -> None:
    server = Server(Settings(max_connections=2))
    first, second = server.connect(), server.connect()
    third = server.connect()
    assert third.output.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    (response,) = third.responses()
    assert response.body == b"[ERROR] Too many connections; try again later.\n"
    assert response.header(b"connection") == b"close"
    assert third.transport.disconnected  # closed at once: its descriptor is what is short
    third.send(b"GET /help HTTP/1.1\r\n\r\n")  # never parsed
    assert len(third.responses()) == 1
    assert server.site.connections == 2
    first.drop()
    assert server.site.connections == 1
    fourth = server.connect().request(b"GET", b"/robots.txt")
    assert fourth.response().status == 200
    metrics = server.service.metrics.render().decode()
    assert 'hoodypipe_rejected_requests_total{reason="connections"} 1.0' in metrics
    second.drop()


def test_the_cap_stays_below_the_open_file_limit() -> None:
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    server = Server(Settings(max_connections=10 * soft))
    assert server.site.max_connections < soft


def test_alpn_offers_http_1_1_only_even_with_http2_installed(
    server: Server, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http, "H2_ENABLED", True)
    assert server.site.acceptableProtocols() == [b"http/1.1"]
    conn = server.connect()
    assert type(conn.protocol) is RelayChannel  # no protocol-switching wrapper


def test_response_kit_reads_a_refusal(server: Server) -> None:
    conn = server.connect().send(b"HELLO\r\n\r\n")
    (response,) = conn.responses()
    assert isinstance(response, Response) and response.status == 400


def test_a_response_head_reaches_the_transport_in_one_write(server: Server) -> None:
    connection = server.connect()
    writes: list[bytes] = []
    sequences: list[object] = []
    transport = connection.transport
    write = transport.write

    def recorded(data: bytes) -> None:
        writes.append(data)
        write(data)

    transport.write = recorded  # type: ignore[method-assign]
    transport.writeSequence = sequences.append  # type: ignore[method-assign,assignment]
    connection.request(b"GET", b"/robots.txt")
    assert all(b"HTTP/1.1" not in piece for sequence in sequences for piece in sequence)
    head, _, _ = writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and writes[0].endswith(b"\r\n\r\n")
    assert b"\r\ncontent-type: " in head.lower()
