"""
What a client sent with its connect is read in the turn the connection is
accepted: ``RelayChannel.connectionMade`` reads it without waiting for the
reactor. Real loopback sockets under a reactor that never reads by itself,
so an answer can only come from that first read.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from twisted.internet import main, tcp

from tests.kit.memory_http import Server

ROBOTS = b"GET /robots.txt HTTP/1.1\r\nHost: a\r\n\r\n"


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected loopback pair: (client, not yet accepted server side)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=5)
        accepted, _ = listener.accept()
    accepted.setblocking(False)
    yield client, accepted
    client.close()
    accepted.close()


def accept(server: Server, sock: socket.socket) -> tcp.Server:
    """What ``tcp.Port.doRead`` does with an accepted socket."""
    peer = sock.getpeername()
    protocol = server.site.buildProtocol(None)
    transport = tcp.Server(sock, protocol, peer, None, 1, server.reactor)  # type: ignore[arg-type]
    protocol.makeConnection(transport)
    return transport


def answer(transport: tcp.Server, client: socket.socket) -> bytes:
    transport.doWrite()
    return client.recv(65536)


def test_a_request_sent_with_the_connect_is_answered_without_a_reactor_read(pair) -> None:
    client, accepted = pair
    client.sendall(ROBOTS)
    transport = accept(Server(), accepted)
    assert answer(transport, client).startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_silent_connection_is_left_to_the_reactor(pair) -> None:
    client, accepted = pair
    transport = accept(Server(), accepted)
    assert transport.dataBuffer == b"" and not transport._tempDataBuffer
    client.sendall(ROBOTS)
    assert transport.doRead() is None  # the reactor's read, when it comes
    assert answer(transport, client).startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_client_gone_before_the_accept_is_left_for_the_reactor_to_end(pair) -> None:
    client, accepted = pair
    client.shutdown(socket.SHUT_WR)
    transport = accept(Server(), accepted)
    assert transport.connected
    assert transport.doRead() is main.CONNECTION_DONE
