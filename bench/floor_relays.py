#!/usr/bin/env python3
"""
Two reference relays for ``floor.py``: the least a Python relay can do per read.

They are not servers anyone should run. Each serves one pipe at a time, for
one receiver that connects first (any GET) and one chunked sender (``curl -T
-``, any PUT or POST): the sender's bytes, framing and all, go to the
receiver's socket as they are read, with no parsing beyond the request head,
no checks and no error handling. What they cost per read is the floor under
everything hoodypipe adds (HTTP parsing, the chunked scanner, the life cycle,
backpressure, logging):

- ``twisted``: a bare ``Protocol`` on Twisted's epoll reactor, reading 512 KiB
  at a time and sending straight to the receiver's socket as hoodypipe does.
  What remains is Twisted's own cost per event.
- ``epoll``: a plain ``select.epoll`` loop, no framework at all.

The sender's body ends at a read that ends with the last chunk,
``\\r\\n0\\r\\n\\r\\n``, or is that chunk alone (a random payload
ending a read in those bytes is negligibly rare); the receiver is then
closed and the sender answered 200.

    python bench/floor_relays.py twisted PORT
    python bench/floor_relays.py epoll PORT
"""

from __future__ import annotations

import select
import socket
import sys
from typing import Any

READ_SIZE = 512 * 1024
RECEIVER_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
SENDER_DONE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
LAST_CHUNK = b"\r\n0\r\n\r\n"


def ends_body(data: bytes) -> bool:
    """Whether this read ends with the last chunk (alone, or after data)."""
    return data.endswith(LAST_CHUNK) or data == LAST_CHUNK[2:]


def run_twisted(port: int) -> None:
    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import protocol
    from twisted.internet import reactor as _reactor

    reactor: Any = _reactor
    pipe: dict[str, Any] = {}

    class Relay(protocol.Protocol):
        head = b""
        sending = False

        def dataReceived(self, data: bytes) -> None:
            if self.sending:
                self.forward(data)
                return
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            transport: Any = self.transport
            if self.head.startswith(b"GET"):
                pipe["send"] = transport.socket.send
                pipe["receiver"] = transport
                transport.write(RECEIVER_HEAD)
                return
            self.sending = True
            transport.bufferSize = READ_SIZE
            if b"100-continue" in self.head[:end].lower():
                transport.write(CONTINUE)
            if rest := self.head[end + 4:]:
                self.forward(rest)

        def forward(self, data: bytes) -> None:
            receiver = pipe["receiver"]
            try:
                sent = pipe["send"](data)
            except BlockingIOError:
                sent = 0
            if sent < len(data):
                receiver.write(data[sent:])
            if ends_body(data):
                receiver.loseConnection()
                transport: Any = self.transport
                transport.write(SENDER_DONE)
                transport.loseConnection()

    factory = protocol.Factory.forProtocol(Relay)
    reactor.listenTCP(port, factory, interface="127.0.0.1")
    reactor.run()


def run_epoll(port: int) -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    listener.setblocking(False)
    poller = select.epoll()
    poller.register(listener.fileno(), select.EPOLLIN)
    heads: dict[int, bytes] = {}
    conns: dict[int, socket.socket] = {}
    senders: set[int] = set()
    receiver: socket.socket | None = None

    def close(sock: socket.socket) -> None:
        fd = sock.fileno()
        poller.unregister(fd)
        conns.pop(fd, None)
        heads.pop(fd, None)
        senders.discard(fd)
        sock.close()

    def forward(sender: socket.socket, data: bytes) -> None:
        assert receiver is not None
        receiver.sendall(data)  # blocking socket: a fast receiver never blocks long
        if ends_body(data):
            close(receiver)
            sender.sendall(SENDER_DONE)
            close(sender)

    while True:
        for fd, _ in poller.poll():
            if fd == listener.fileno():
                conn, _ = listener.accept()
                conns[conn.fileno()] = conn
                heads[conn.fileno()] = b""
                poller.register(conn.fileno(), select.EPOLLIN)
                continue
            sock = conns.get(fd)
            if sock is None:
                continue
            data = sock.recv(READ_SIZE)
            if not data:
                close(sock)
            elif fd in senders:
                forward(sock, data)
            else:
                head = heads[fd] + data
                end = head.find(b"\r\n\r\n")
                heads[fd] = head
                if end < 0:
                    continue
                if head.startswith(b"GET"):
                    receiver = sock
                    sock.sendall(RECEIVER_HEAD)
                    continue
                senders.add(fd)
                if b"100-continue" in head[:end].lower():
                    sock.sendall(CONTINUE)
                if rest := head[end + 4:]:
                    forward(sock, rest)


if __name__ == "__main__":
    kind, port_text = sys.argv[1:3]
    {"twisted": run_twisted, "epoll": run_epoll}[kind](int(port_text))
