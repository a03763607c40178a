"""``?sha256`` through the whole server in memory: real Site, StringTransports,
and a worker that hashes only when the test lets it (``FakeRunner``), so the
order of the sender's lines, the moment receivers are finished and the
hasher's hold on the sender can all be checked step by step.
"""

from __future__ import annotations

import hashlib

import pytest
from twisted.internet.testing import MemoryReactorClock

from hoodypipe.bytepath.hasher import HIGH_WATER
from hoodypipe.service import HoodypipeService
from hoodypipe.settings import Settings
from tests.kit.hashing import FakeRunner
from tests.kit.memory_http import Connection, Server
from tests.kit.observers import Recorder

LINES = [
    "[INFO] Waiting for 1 receiver(s) to connect...",
    "[INFO] 1 receiver(s) already connected.",
    "[INFO] Streaming to 1 receiver(s)...",
    "[INFO] Upload complete.",
]


class HashingServer(Server):
    def __init__(self) -> None:
        self.runner = FakeRunner()
        self.reactor = MemoryReactorClock()
        self.service = HoodypipeService(self.reactor, Settings(), hashing=self.runner)
        self.site = self.service.site
        self.registry = self.service.registry
        self.observer = Recorder()
        self.registry.add_observer(self.observer)
        self._ports = iter(range(40000, 50000))

    def hash_all(self) -> None:
        while self.runner.in_flight:
            self.runner.finish_next()
        self.reactor.advance(0)


@pytest.fixture
def server() -> HashingServer:
    return HashingServer()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("query", [b"sha256", b"sha256=", b"sha256=TRUE", b"sha256=yes",
                                   b"n=1&sha256=1"])
def test_a_sized_send_gets_its_receipt_before_transfer_complete(
    server: HashingServer, query: bytes
) -> None:
    payload = b"the bytes that left " * 1000
    receiver = server.connect().request(b"GET", b"/doc")
    sender = server.connect().request(b"PUT", b"/doc?" + query, body=payload)
    # every byte is in and relayed, but nothing completes before the digest
    assert receiver.response().body == payload
    assert sender.response().lines == LINES
    assert server.registry.status("doc").state == "streaming"
    assert server.observer.done == []
    server.hash_all()
    assert server.registry.status("doc").state == "idle"
    assert sender.response().lines == [
        *LINES, f"[INFO] sha256: {sha(payload)}", "[INFO] Transfer complete."]
    assert sender.response().complete
    (done,) = server.observer.done
    assert (done.ok, done.bytes, done.sha256) == (True, len(payload), sha(payload))
    snapshot = server.service.spectators.snapshot("doc")
    assert snapshot["sha256"] == sha(payload)
    assert snapshot["lastTransfer"]["sha256"] == sha(payload)


@pytest.mark.parametrize("query", [b"", b"?sha256=false", b"?sha256=No", b"?sha256=0"])
def test_without_sha256_nothing_is_hashed(server: HashingServer, query: bytes) -> None:
    receiver = server.connect().request(b"GET", b"/plain")
    sender = server.connect().request(b"PUT", b"/plain" + query, body=b"x" * 5000)
    assert receiver.response().complete
    assert server.runner.batches == []
    assert sender.response().lines == [*LINES, "[INFO] Transfer complete."]
    (done,) = server.observer.done
    assert done.sha256 is None
    assert server.service.spectators.snapshot("plain")["sha256"] is None


CHUNKED = (b"5;ext=1\r\nhello\r\n000B\r\n, world and\r\n1\r\n!\r\n"
           b"0\r\nX-Trailer: t\r\n\r\n")


@pytest.mark.parametrize("version", [b"HTTP/1.1", b"HTTP/1.0"])
def test_a_chunked_send_hashes_the_payload_not_the_framing(
    server: HashingServer, version: bytes
) -> None:
    receiver = server.connect().request(b"GET", b"/ch", version=version)
    sender = server.connect().request(b"POST", b"/ch?sha256",
                                      b"Transfer-Encoding: chunked")
    for i in range(0, len(CHUNKED), 5):  # in small, awkward reads
        sender.send(CHUNKED[i:i + 5])
        server.hash_all()
    lines = sender.response().lines
    assert lines[-2:] == [f"[INFO] sha256: {sha(b'hello, world and!')}",
                          "[INFO] Transfer complete."]
    if version == b"HTTP/1.0":
        assert receiver.output.endswith(b"\r\n\r\nhello, world and!")
    else:
        assert receiver.response().body == b"hello, world and!"
        assert receiver.response().complete
    (done,) = server.observer.done
    assert done.sha256 == sha(b"hello, world and!")


def paused(connection: Connection) -> bool:
    return connection.transport.producerState == "paused"


def test_a_hasher_that_falls_behind_holds_the_sender_back(server: HashingServer) -> None:
    total = 3 * HIGH_WATER
    receiver = server.connect().request(b"GET", b"/slow")
    sender = server.connect().send(
        b"PUT /slow?sha256 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % total)
    read = b"r" * (256 * 1024)
    sent = 0
    while not paused(sender) and sent < total:
        sender.send(read)
        sent += len(read)
    assert paused(sender), "the hasher never held the sender back"
    assert sent <= HIGH_WATER + len(read)
    assert not paused(receiver)  # the receiver is keeping up: it is the hasher
    server.runner.finish_next()
    server.reactor.advance(0)
    while sent < total:
        if paused(sender):
            server.runner.finish_next()
            continue
        sender.send(read)
        sent += len(read)
    server.hash_all()
    (done,) = server.observer.done
    assert done.sha256 == sha(b"r" * total)
    assert receiver.response().complete and len(receiver.response().body) == total


def test_receivers_that_leave_with_every_byte_before_the_digest_do_not_fail_it(
    server: HashingServer,
) -> None:
    """A sized receiver (curl) closes as soon as it has Content-Length bytes."""
    receivers = [server.connect().request(b"GET", b"/gone?n=2") for _ in range(2)]
    sender = server.connect().request(b"PUT", b"/gone?n=2&sha256", body=b"abc")
    for receiver in receivers:
        assert receiver.response().body == b"abc"
        receiver.drop()
    server.hash_all()
    (done,) = server.observer.done
    assert (done.ok, done.sha256) == (True, sha(b"abc"))
    assert sender.response().lines[-3:] == [
        "[INFO] Upload complete.", f"[INFO] sha256: {sha(b'abc')}",
        "[INFO] Transfer complete."]


def test_a_receiver_lost_mid_body_still_fails_a_hashed_transfer(
    server: HashingServer,
) -> None:
    receiver = server.connect().request(b"GET", b"/cut")
    sender = server.connect().send(
        b"PUT /cut?sha256 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
    receiver.drop()
    server.hash_all()
    (done,) = server.observer.done
    assert (done.ok, done.sha256) == (False, None)
    assert sender.response().lines[-1] == (
        "[ERROR] All receivers disconnected before transfer completed.")


def test_a_sender_gone_after_its_whole_body_still_completes(server: HashingServer) -> None:
    receiver = server.connect().request(b"GET", b"/left")
    sender = server.connect().request(b"PUT", b"/left?sha256", body=b"all of it")
    sender.drop()
    assert not receiver.transport.disconnected
    server.hash_all()
    assert receiver.response().complete and receiver.response().body == b"all of it"
    (done,) = server.observer.done
    assert (done.ok, done.sha256) == (True, sha(b"all of it"))


def test_a_sender_gone_mid_body_fails_and_drops_the_hash(server: HashingServer) -> None:
    receiver = server.connect().request(b"GET", b"/cut2")
    sender = server.connect().send(
        b"PUT /cut2?sha256 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
    sender.drop()
    assert receiver.transport.disconnected
    server.hash_all()
    (done,) = server.observer.done
    assert (done.ok, done.reason, done.sha256) == (False, "Sender disconnected", None)


def test_a_worker_failure_fails_the_transfer(server: HashingServer) -> None:
    receiver = server.connect().request(b"GET", b"/broken")
    sender = server.connect().request(b"PUT", b"/broken?sha256", body=b"abc")
    server.runner.fail_next()
    server.reactor.advance(0)
    (done,) = server.observer.done
    assert (done.ok, done.reason) == (False, "Hashing the payload failed")
    assert sender.response().lines[-1] == "[ERROR] Hashing the payload failed."
    assert receiver.transport.disconnected  # aborted, never finished


FORM_BOUNDARY = b"hashform7"
FORM_TYPE = b"Content-Type: multipart/form-data; boundary=" + FORM_BOUNDARY


def form_part(headers: bytes, content: bytes) -> bytes:
    return b"--" + FORM_BOUNDARY + b"\r\n" + headers + b"\r\n\r\n" + content + b"\r\n"


@pytest.mark.parametrize("chunked", [False, True])
def test_a_form_send_hashes_the_forwarded_part_not_the_multipart_body(
    server: HashingServer, chunked: bool
) -> None:
    """The receipt is of what the receivers got: the first file's bytes."""
    content = b"the part that left " * 500
    body = (form_part(b'Content-Disposition: form-data; name="note"', b"not forwarded") +
            form_part(b'Content-Disposition: form-data; name="file"; filename="a.bin"',
                      content) +
            form_part(b'Content-Disposition: form-data; name="f2"; filename="b.bin"',
                      b"second file, not forwarded") +
            b"--" + FORM_BOUNDARY + b"--\r\n")
    receiver = server.connect().request(b"GET", b"/form")
    if chunked:
        sender = server.connect().request(b"POST", b"/form?sha256", FORM_TYPE,
                                          b"Transfer-Encoding: chunked")
        for i in range(0, len(body), 1000):
            piece = body[i:i + 1000]
            sender.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        sender.send(b"0\r\n\r\n")
    else:
        sender = server.connect().request(b"POST", b"/form?sha256", FORM_TYPE, body=body)
    assert receiver.output.startswith(b"HTTP/1.1 200 OK\r\n")
    assert server.observer.done == [], "completed before the digest"
    server.hash_all()
    assert receiver.response().body == content
    assert receiver.response().complete
    assert sender.response().lines[-2:] == [
        f"[INFO] sha256: {sha(content)}", "[INFO] Transfer complete."]
    (done,) = server.observer.done
    assert (done.ok, done.bytes, done.sha256) == (True, len(content), sha(content))
