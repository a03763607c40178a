"""
What Content-Type a receiver gets for every hostile spelling a sender tries,
through the real service: real curl on both sides, raw sockets for bytes
curl will not send (NUL, obs-text, two Content-Type lines).  The spellings
are the ones that got script through the old deny-list (issue 8, finding 1)
and their relatives; the grammar itself is in tests/unit/web/test_mediatype.py.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest

from tests.kit.clients import Clients, nothing_registered, wait_until_waiting
from tests.kit.service import Service, running_service

OCTET = "application/octet-stream"
TEXT = "text/plain"


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(tmp_path_factory.mktemp("ctype")) as started:
        yield started


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.mark.parametrize("sent, served", [
    # trailing junk: not a media type at all
    ("text/html x", OCTET),
    ('text/html "', OCTET),
    ("text/html(", OCTET),
    ("text/html x; charset=utf-8", OCTET),
    ("image/svg+xml x", OCTET),
    ("text/javascript x", OCTET),
    ("application/json, text/html", OCTET),
    ("text/html,", OCTET),
    ('Text/Html ; Charset = "x"', OCTET),
    ("*/*", OCTET),
    ("text/html;charset=utf-8 <script>", OCTET),
    # script-capable types: shown as text
    ("text/html", TEXT),
    ("TEXT/HTML", TEXT),
    ("text/html;charset=utf-8", "text/plain; charset=utf-8"),
    ('text/html; charset="UTF-8"', "text/plain; charset=UTF-8"),
    ("text/html ;\tcharset=utf-8", "text/plain; charset=utf-8"),
    ("application/xhtml+xml", TEXT),
    ("image/svg+xml", TEXT),
    ("text/xml", TEXT),
    ("application/xml", TEXT),
    ("application/rss+xml", TEXT),
    ("text/xsl", TEXT),
    ("text/x-javascript", TEXT),
    ("text/jscript", TEXT),
    ("text/livescript", TEXT),
    ("application/x-ecmascript", TEXT),
    ("text/x-ecmascript", TEXT),
    ("text/javascript1.5", TEXT),
    ("application/javascript", TEXT),
    ("module/javascript", TEXT),
    # parameters other than charset never reach the receiver
    ("text/html; charset=utf-8; x=\"<script>\"", "text/plain; charset=utf-8"),
    ('text/plain; charset="utf-8, text/html"', TEXT),
    ("video/mp4; codecs=avc1", "video/mp4"),
    # safe types pass, rebuilt from their parts
    ("IMAGE/PNG", "image/png"),
    ("video/webm", "video/webm"),
    ("audio/mpeg", "audio/mpeg"),
    ("application/pdf", "application/pdf"),
    ("text/plain; charset=utf-8", "text/plain; charset=utf-8"),
    # unknown types download
    ("application/x-msdownload", OCTET),
    ("multipart/x-mixed-replace; boundary=x", OCTET),
    ("video/x+xml", TEXT),
])
def test_what_a_receiver_gets_for_each_spelling(
    relay: Service, clients: Clients, sent: str, served: str,
) -> None:
    name = unique("ctype")
    receiver = clients.receive(relay.url(name, "wait=30"))
    wait_until_waiting(relay.base, name)
    sender = clients.curl("-H", f"Content-Type: {sent}", "--data-binary",
                          "<script>document.title='owned'</script>", relay.url(name))
    assert sender.wait(30) == 0 and receiver.wait(30) == 0
    assert receiver.header("Content-Type") == served
    assert receiver.header("X-Content-Type-Options") == "nosniff"
    assert receiver.header("Content-Security-Policy") == "sandbox"
    assert receiver.text() == "<script>document.title='owned'</script>"
    nothing_registered(relay.base)


def raw_send(port: int, name: str, header_lines: bytes) -> bytes:
    body = b"<svg onload=alert(1)>"
    request = (b"PUT /" + name.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
               + header_lines + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(request)
        received = b""
        while chunk := raw.recv(65536):
            received += chunk
    return received


@pytest.mark.parametrize("lines, served", [
    (b"Content-Type: text/plain\r\nContent-Type: text/html\r\n", OCTET),
    (b"Content-Type: image/png\r\nContent-Type: image/svg+xml\r\n", OCTET),
    # Twisted's channel refuses a NUL in a header itself: no receiver sees it.
    (b"Content-Type: text/html\x00\r\n", None),
    (b"Content-Type: text/html\x0b\r\n", OCTET),
    (b"Content-Type: text/h\xe9ml\r\n", OCTET),
    (b"Content-Type: text/plain; charset=\xe9\r\n", OCTET),
    (b"Content-Type: text/plain; charset=\"\xe9\"\r\n", TEXT),
    (b"Content-Type: \xef\xbb\xbftext/html\r\n", OCTET),
    (b"Content-Type: text/" + b"h" * 3000 + b"\r\n", OCTET),
    (b"Content-Type:\r\n", OCTET),
    (b"Content-Type:   \t \r\n", OCTET),
    (b"Content-Type: image/svg+xml\r\n  x\r\n", OCTET),
], ids=lambda v: repr(v)[:40])
def test_bytes_curl_cannot_send(
    relay: Service, clients: Clients, lines: bytes, served: str | None,
) -> None:
    name = unique("rawtype")
    receiver = clients.receive(relay.url(name, "wait=30"))
    wait_until_waiting(relay.base, name)
    answer = raw_send(relay.port, name, lines)
    if served is None:
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
        wait_until_waiting(relay.base, name)
        receiver.kill()
        assert receiver.text() == ""
        nothing_registered(relay.base)
        return
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert receiver.wait(30) == 0
    assert receiver.header("Content-Type") == served
    assert receiver.text() == "<svg onload=alert(1)>"
    nothing_registered(relay.base)
