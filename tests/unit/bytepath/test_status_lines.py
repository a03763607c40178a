"""
A send's status lines are held to the end of the reactor turn they were told
in: the receivers' first bytes go out first, the lines follow together, in
the order they were told, and any other write or end of the response writes
them before itself. In memory, with the reactor turned by hand.
"""

from __future__ import annotations

from tests.kit.memory_http import Connection, Server

WAITING = "[INFO] Waiting for 1 receiver(s) to connect..."
STARTING = ["[INFO] A receiver connected.", "[INFO] Streaming to 1 receiver(s)..."]


def arrive(connection: Connection, data: bytes) -> None:
    """Bytes read in one reactor turn (``Connection.send`` also ends the turn)."""
    connection.protocol.dataReceived(data)


def test_a_receiver_filling_a_pipe_gets_its_bytes_before_the_sender_hears_of_it() -> None:
    server = Server()
    sender = server.connect()
    sender.send(b"PUT /fill HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello")
    server.reactor.advance(0)
    told = sender.output
    assert sender.response().lines == [WAITING]
    receiver = server.connect()
    arrive(receiver, b"GET /fill HTTP/1.1\r\nHost: a\r\n\r\n")
    # the same turn: the receiver has its head and the first bytes, the
    # sender's two lines are still held
    assert receiver.output.endswith(b"hello")
    assert sender.output == told
    server.reactor.advance(0)
    response = sender.response()
    assert response.lines == [WAITING, *STARTING]
    assert response.raw_body.count(b"\r\n") == 4, "one chunk per turn's lines"


def test_a_transfer_that_ends_in_its_first_turn_writes_every_line_in_order() -> None:
    server = Server()
    receiver = server.connect().request(b"GET", b"/whole")
    sender = server.connect()
    arrive(sender, b"PUT /whole HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
    # no turn in between: the end of the response writes what was held
    assert receiver.response().body == b"hello"
    response = sender.response()
    assert response.complete
    assert response.lines == [
        WAITING, "[INFO] 1 receiver(s) already connected.", STARTING[1],
        "[INFO] Upload complete.", "[INFO] Transfer complete."]


def test_a_sender_that_waits_hears_so_at_the_end_of_the_turn() -> None:
    server = Server()
    sender = server.connect()
    arrive(sender, b"PUT /alone HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
    assert sender.output == b""
    server.reactor.advance(0)
    assert sender.response().lines == [WAITING]


def test_a_refusal_after_held_lines_comes_after_them() -> None:
    server = Server()
    sender = server.connect()
    sender.send(b"PUT /given-up?wait=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
    server.reactor.advance(1)
    response = sender.response()
    assert response.complete
    assert response.lines[0] == WAITING
    assert response.lines[-1].startswith("[ERROR] ")
    assert len(response.lines) == 2


def test_lines_of_a_sender_that_left_are_dropped_with_its_connection() -> None:
    server = Server()
    sender = server.connect()
    arrive(sender, b"PUT /gone HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
    sender.drop()  # before the end of the turn the line was told in
    assert sender.output == b""
    assert not any(call.func.__name__ == "write_lines" for call in server.reactor.getDelayedCalls())


def test_a_sender_that_half_closes_in_the_same_turn_hears_both_lines_in_order() -> None:
    server = Server()
    sender = server.connect()
    arrive(sender, b"PUT /fin HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
    sender.protocol.readConnectionLost()  # its FIN, before the end of the turn
    assert sender.response().lines == [
        WAITING, "[INFO] Upload received (connection half-closed)."]
