"""
When a send starts rendering: at once when its whole body came with the
headers, else one reactor turn later (so ``100 Continue`` goes out first and
a body still coming is streamed). In memory, with the reactor turned by hand.
"""

from __future__ import annotations

from tests.kit.memory_http import Server

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def test_a_body_that_came_with_its_headers_reaches_the_receiver_in_the_same_turn() -> None:
    server = Server()
    receiver = server.connect().request(b"GET", b"/now")
    sender = server.connect()
    sender.protocol.dataReceived(
        b"PUT /now HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
    # no reactor turn in between
    assert receiver.response().body == b"hello"
    assert sender.response().lines[-1] == "[INFO] Transfer complete."


def test_an_empty_body_is_rendered_in_the_same_turn() -> None:
    server = Server()
    receiver = server.connect().request(b"GET", b"/empty")
    sender = server.connect()
    sender.protocol.dataReceived(b"PUT /empty HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
    assert receiver.response().body == b""
    assert sender.response().lines[-1] == "[INFO] Transfer complete."


def test_a_body_still_coming_is_rendered_on_the_next_turn_and_streamed() -> None:
    server = Server()
    receiver = server.connect().request(b"GET", b"/later")
    sender = server.connect()
    sender.protocol.dataReceived(
        b"PUT /later HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello")
    assert sender.output == b"" and receiver.output == b""
    server.reactor.advance(0)
    assert receiver.output.endswith(b"hello")
    sender.send(b"world")
    assert receiver.response().body == b"helloworld"


def test_expect_continue_with_the_whole_body_still_puts_100_first() -> None:
    server = Server()
    receiver = server.connect().request(b"GET", b"/eager")
    sender = server.connect()
    sender.protocol.dataReceived(
        b"PUT /eager HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
        b"Content-Length: 5\r\n\r\nhello")
    assert sender.output.startswith(CONTINUE + b"HTTP/1.1 200 OK\r\n")
    assert receiver.response().body == b"hello"
    server.reactor.advance(0)  # the cancelled turn-later render does nothing
    assert sender.output.count(b"HTTP/1.1 200 OK") == 1
