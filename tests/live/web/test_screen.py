"""
What is refused on every path of the real service, checked with real curl
from the attacker's side: service-worker fetches (any method, spectators and
reserved pages too, before any 405), request targets that are no path,
absolute-form targets (served), repeated and absurd parameters; and which
responses carry ``Content-Security-Policy: sandbox``.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kit.clients import Clients, Curl, nothing_registered, wait_until_waiting
from tests.kit.service import Service, running_service

SERVICE_WORKER = "Service workers are not allowed on this server."
NOT_A_PATH = "The request target must be a path starting with '/'."


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One service for the module: every test here leaves nothing registered."""
    with running_service(tmp_path_factory.mktemp("screen")) as started:
        yield started


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def refused(run: Curl, status: int, line: str) -> None:
    run.wait(30)
    assert run.status() == status, run.header_text()
    assert run.text() == f"[ERROR] {line}\n"
    assert run.header("Content-Type") == "text/plain; charset=utf-8"
    assert run.header("Content-Security-Policy") == "sandbox"
    assert run.header("Allow") is None


def raw_exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` as it is and read the answer until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(request)
        received = b""
        while chunk := raw.recv(65536):
            received += chunk
    return received


# -- service workers ----------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ("{pipe}",),
    ("{pipe}?wait=1",),
    ("{api}",),
    ("{pipe}?progress",),
    ("{pipe}?status",),
    ("-I", "{pipe}?status"),
    ("-X", "OPTIONS", "{pipe}"),
    ("-X", "DELETE", "{pipe}"),
    ("-X", "PROPFIND", "{pipe}"),
    ("--data-binary", "self.onfetch = e => e.respondWith(new Response('owned'))", "{pipe}"),
    ("-T", "-", "{pipe}"),
    ("{base}/",),
    ("{base}/robots.txt",),
    ("{base}/api/v1/pipe/health",),
], ids=lambda a: " ".join(a))
def test_a_service_worker_fetch_is_400_on_every_path_and_method(
    relay: Service, clients: Clients, args: tuple[str, ...],
) -> None:
    name = unique("worker.js")
    fields = {"pipe": relay.url(name), "api": f"{relay.base}/api/v1/pipe/{name}",
              "base": relay.base}
    filled = [a.format(**fields) for a in args]
    run = clients.curl("-H", "Service-Worker: script", *filled)
    run.wait(30)
    assert run.status() == 400, run.header_text()
    assert run.header("Allow") is None
    if "-I" not in args:
        refused(run, 400, SERVICE_WORKER)
    nothing_registered(relay.base)


def test_a_worker_sent_and_waiting_is_never_served_to_a_worker_fetch(
    relay: Service, clients: Clients,
) -> None:
    name = unique("sw.js")
    sender = clients.curl("-H", "Content-Type: text/javascript x",
                          "--data-binary", "self.onfetch = () => {}", relay.url(name, "wait=30"))
    wait_until_waiting(relay.base, name)
    refused(clients.curl("-H", "Service-Worker: script", relay.url(name)), 400,
            SERVICE_WORKER)
    # The sender is still waiting for a real receiver, which gets it inert.
    receiver = clients.receive(relay.url(name))
    assert receiver.wait(30) == 0 and sender.wait(30) == 0
    assert receiver.text() == "self.onfetch = () => {}"
    assert receiver.header("Content-Type") == "application/octet-stream"
    nothing_registered(relay.base)


# -- request targets ------------------------------------------------------------------


@pytest.mark.parametrize(("target", "line"), [
    ("abc", NOT_A_PATH),
    ("abc?wait=1", NOT_A_PATH),
    ("xrobots.txt", NOT_A_PATH),
    ("*", "The request target '*' is only for OPTIONS."),
    ("ftp://relay/abc", "An absolute request target must be an http or https URL with a host."),
    ("http://user@relay/abc",
     "An absolute request target must be an http or https URL with a host."),
])
def test_a_target_that_is_no_path_is_400(
    relay: Service, clients: Clients, target: str, line: str,
) -> None:
    refused(clients.curl("--request-target", target, relay.base + "/"), 400, line)
    nothing_registered(relay.base)


def test_get_abc_is_not_the_pipe_bc(relay: Service, clients: Clients) -> None:
    name = unique("bc")
    sender = clients.curl("--data-binary", "secret", relay.url(name, "wait=30"))
    wait_until_waiting(relay.base, name)
    answer = raw_exchange(relay.port, f"GET a{name} HTTP/1.1\r\nHost: x\r\n"
                          "Connection: close\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert answer.endswith(f"\r\n\r\n[ERROR] {NOT_A_PATH}\n".encode())
    assert b"secret" not in answer
    wait_until_waiting(relay.base, name)  # the sender still waits for its receiver
    sender.kill()
    nothing_registered(relay.base)


def test_an_absolute_form_target_is_served_as_its_path(
    relay: Service, clients: Clients,
) -> None:
    name = unique("abs")
    receiver = clients.curl("--request-target", f"http://relay.example/{name}?wait=30",
                            relay.base + "/")
    wait_until_waiting(relay.base, name)
    sender = clients.curl("--request-target", f"HTTP://relay.example:99/api/v1/pipe/{name}",
                          "--data-binary", "absolute", relay.base + "/")
    assert sender.wait(30) == 0 and receiver.wait(30) == 0
    assert receiver.status() == 200 and receiver.text() == "absolute"
    # Its authority stands for the Host header (RFC 9112 section 3.2.2).
    helped = clients.curl("--request-target", "http://pipes.example.org:8443/help",
                          relay.base + "/")
    helped.wait(30)
    assert "curl -T myfile http://pipes.example.org:8443/mypath" in helped.text()
    nothing_registered(relay.base)


def test_options_asterisk_is_answered(relay: Service, clients: Clients) -> None:
    run = clients.curl("-X", "OPTIONS", "--request-target", "*", relay.base + "/")
    run.wait(30)
    assert run.status() == 204


# -- parameters -----------------------------------------------------------------------------


@pytest.mark.parametrize("query, line", [
    ("n=1&n=2", "Parameter n given more than once."),
    ("n=2&n=2", "Parameter n given more than once."),
    ("wait=5&wait=6", "Parameter wait given more than once."),
    ("size=1&size=1", "Parameter size given more than once."),
    ("progress&progress", "Parameter progress given more than once."),
    ("status&status", "Parameter status given more than once."),
    ("size=9999999999999999999Ti", "size must be at most 9223372036854775807 bytes (2^63-1)."),
    ("size=9223372036854775808", "size must be at most 9223372036854775807 bytes (2^63-1)."),
])
@pytest.mark.parametrize("side", ["receiver", "sender"])
def test_repeated_and_absurd_parameters_are_400(
    relay: Service, clients: Clients, query: str, line: str, side: str,
) -> None:
    url = relay.url(unique("param"), query)
    run = clients.curl("--data-binary", "x", url) if side == "sender" else clients.curl(url)
    refused(run, 400, line)
    nothing_registered(relay.base)


def test_the_largest_size_is_accepted(relay: Service, clients: Clients, tmp_path: Path) -> None:
    name = unique("big")
    receiver = clients.receive(relay.url(name, "wait=30"))
    wait_until_waiting(relay.base, name)
    data = tmp_path / "data"
    data.write_bytes(b"z" * 1000)
    sender = clients.send_stream(relay.url(name, "size=9223372036854775807"), data)
    assert sender.wait(30) == 0 and receiver.wait(30) == 0
    assert receiver.out.read_bytes() == b"z" * 1000
    nothing_registered(relay.base)


# -- the sandbox policy ---------------------------------------------------------------------------


def test_a_receiver_is_sandboxed_and_our_pages_are_not(
    relay: Service, clients: Clients,
) -> None:
    name = unique("sandboxed")
    receiver = clients.receive(relay.url(name, "wait=30"))
    wait_until_waiting(relay.base, name)
    sender = clients.curl("-H", "Content-Type: image/png", "--data-binary", "png",
                          relay.url(name))
    assert sender.wait(30) == 0 and receiver.wait(30) == 0
    assert receiver.header("Content-Type") == "image/png"
    assert receiver.header("Content-Security-Policy") == "sandbox"
    assert receiver.header("X-Content-Type-Options") == "nosniff"
    for path in ("/", f"/{name}?progress"):
        page = clients.curl("-H", "Accept: text/html", "--max-time", "5", relay.base + path)
        page.wait(30)
        policy = page.header("Content-Security-Policy") or ""
        assert "script-src 'nonce-" in policy and "sandbox" not in policy
    nothing_registered(relay.base)
