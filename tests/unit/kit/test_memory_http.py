"""The in-memory HTTP kit's response reader."""

from __future__ import annotations

from tests.kit.memory_http import parse_responses

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def test_response_reader() -> None:
    data = (CONTINUE + b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3;x\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
            b"HTTP/1.1 400 Bad\r\nContent-Length: 4\r\nX-A: 1\r\nx-a: 2\r\n\r\nbody")
    first, second, third = parse_responses(data)
    assert (first.status, second.status, third.status) == (100, 200, 400)
    assert second.body == b"abcde" and second.complete
    assert third.body == b"body" and third.header(b"X-A") == b"1, 2"
    cut = parse_responses(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc")[0]
    assert not cut.complete


