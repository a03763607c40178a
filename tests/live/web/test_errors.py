"""Every refusal of the contract: status code, one ``[ERROR]`` line, nothing left behind."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.kit.clients import Clients, nothing_registered, wait_until_waiting
from tests.kit.service import Service, running_service
from tests.kit.waiting import wait_for


def assert_refused(curl_run: object, status: int, line: str) -> None:
    from tests.kit.clients import Curl
    assert isinstance(curl_run, Curl)
    curl_run.wait(30)
    assert curl_run.status() == status, curl_run.header_text()
    assert curl_run.text() == f"[ERROR] {line}\n"
    assert (curl_run.header("Content-Type") or "").startswith("text/plain")


@pytest.mark.parametrize("path, line", [
    ("/" + "x" * 1025, "Path too long (max 1024 characters)."),
    ("/api/v1/pipe/" + "y" * 1025, "Path too long (max 1024 characters)."),
])
def test_name_too_long_is_414(service: Service, clients: Clients, path: str,
                              line: str) -> None:
    assert_refused(clients.curl(service.base + path), 414, line)


def test_name_of_1024_is_accepted(service: Service, clients: Clients) -> None:
    name = "z" * 1024
    receiver = clients.receive(service.url(name, "wait=1"))
    assert_refused(receiver, 408, "Timed out waiting for sender.")


@pytest.mark.parametrize("path", [
    "/a%2Fb", "/a%2fb", "/a%5Cb", "/a\\b", "/a//b", "/a/./b", "/a/../b", "/..",
    "/a%00b", "/a%0Ab", "/a/%2e%2e/b",
])
def test_bad_names_are_400(service: Service, clients: Clients, path: str) -> None:
    run = clients.curl("--path-as-is", service.base + path)
    run.wait(30)
    assert run.status() == 400
    assert run.text().startswith("[ERROR] ") and run.text().count("\n") == 1
    nothing_registered(service.base)


@pytest.mark.parametrize("path", [
    "/", "/help", "/robots.txt", "/favicon.ico", "/api/v1/pipe/health",
    "/api/v1/pipe/metrics",
])
@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_sending_to_a_reserved_path_is_400(
    service: Service, clients: Clients, path: str, method: str
) -> None:
    run = clients.curl("-X", method, "--data-binary", "payload", service.base + path)
    assert_refused(run, 400, "Cannot send to a reserved path.")


@pytest.mark.parametrize("method", ["DELETE", "PATCH", "TRACE"])
def test_other_methods_are_405(service: Service, clients: Clients, method: str) -> None:
    run = clients.curl("-X", method, service.url("pipe"))
    assert_refused(run, 405, f"Method {method} is not allowed.")
    assert run.header("Allow") == "GET, HEAD, POST, PUT, OPTIONS"


def test_head_without_status_is_405(service: Service, clients: Clients) -> None:
    run = clients.curl("-I", service.url("pipe"))
    run.wait(30)
    assert run.status() == 405
    nothing_registered(service.base)


@pytest.mark.parametrize("query", [
    "n=0", "n=257", "n=abc", "n=1.5", "n=", "wait=0", "wait=abc", "wait=1.5", "wait",
    "wait=3601", "size=abc", "size=10X",
])
def test_bad_parameters_are_400_and_register_nothing(
    service: Service, clients: Clients, query: str
) -> None:
    receiver = clients.receive(service.url("params", query))
    receiver.wait(30)
    assert receiver.status() == 400
    assert receiver.text().startswith("[ERROR] ")
    sender = clients.curl("--data-binary", "x", service.url("params", query))
    sender.wait(30)
    if query.startswith("size"):
        assert sender.status() == 400
    else:
        assert sender.status() == 400
    nothing_registered(service.base)


def test_n_mismatch_is_400(service: Service, clients: Clients) -> None:
    waiting = clients.receive(service.url("mm", "n=2&wait=30"))
    wait_until_waiting(service.base, "mm")
    other = clients.receive(service.url("mm", "n=3"))
    assert_refused(other, 400, "Number of receivers mismatch: this path expects n=2, got n=3.")
    waiting.kill()
    nothing_registered(service.base)


def test_second_sender_is_400(service: Service, clients: Clients, tmp_path: Path) -> None:
    first = clients.curl("--data-binary", "one", service.url("dup", "wait=30"))
    wait_until_waiting(service.base, "dup")
    second = clients.curl("--data-binary", "two", service.url("dup"))
    assert_refused(second, 400, "Another sender is already connected on this path.")
    first.kill()
    nothing_registered(service.base)


def test_receiver_beyond_n_is_400(service: Service, clients: Clients) -> None:
    first = clients.receive(service.url("full", "wait=30"))
    wait_until_waiting(service.base, "full")
    second = clients.receive(service.url("full"))
    assert_refused(second, 400, "The number of receivers has reached its limit.")
    first.kill()
    nothing_registered(service.base)


def test_anyone_on_a_streaming_path_is_400(service: Service, clients: Clients,
                                           tmp_path: Path) -> None:
    data = tmp_path / "d.bin"
    data.write_bytes(b"x" * 20_000_000)
    receiver = clients.receive(service.url("busy"), "--limit-rate", "2M")
    wait_until_waiting(service.base, "busy")
    sender = clients.send_stream(service.url("busy"), data)
    wait_for(lambda: receiver.out.exists() and receiver.out.stat().st_size > 0, 20,
             "the transfer to start")
    late = clients.receive(service.url("busy"))
    assert_refused(late, 400, "A transfer is already in progress on this path.")
    late_sender = clients.curl("--data-binary", "x", service.url("busy"))
    assert_refused(late_sender, 400, "A transfer is already in progress on this path.")
    receiver.kill()
    sender.wait(30)
    nothing_registered(service.base)


@pytest.mark.parametrize("header, line", [
    ("Content-Range: bytes 0-0/1", "Content-Range is not supported on a send."),
    ("Service-Worker: script", "Service workers are not allowed on this server."),
])
def test_forbidden_send_headers_are_400(service: Service, clients: Clients,
                                        header: str, line: str) -> None:
    run = clients.curl("--data-binary", "x", "-H", header, service.url("forbid"))
    assert_refused(run, 400, line)
    nothing_registered(service.base)


def test_waiting_cap_is_429(tmp_path: Path, clients: Clients) -> None:
    with running_service(tmp_path, "--max-waiting", "1") as service:
        first = clients.receive(service.url("cap1", "wait=30"))
        wait_until_waiting(service.base, "cap1")
        second = clients.receive(service.url("cap2"))
        assert_refused(second, 429, "Too many waiting pipes; try again later.")
        sender = clients.curl("--data-binary", "x", service.url("cap3"))
        assert_refused(sender, 429, "Too many waiting pipes; try again later.")
        first.kill()
        nothing_registered(service.base)


def test_active_cap_is_429(tmp_path: Path, clients: Clients) -> None:
    data = tmp_path / "d.bin"
    data.write_bytes(b"x" * 20_000_000)
    with running_service(tmp_path, "--max-active", "1") as service:
        receiver = clients.receive(service.url("act1"), "--limit-rate", "2M")
        wait_until_waiting(service.base, "act1")
        sender = clients.send_stream(service.url("act1"), data)
        wait_for(lambda: receiver.out.exists() and receiver.out.stat().st_size > 0, 20,
                 "the first transfer to start")
        second = clients.receive(service.url("act2"))
        assert_refused(second, 429, "Server at maximum active transfer capacity.")
        receiver.kill()
        sender.wait(30)
        nothing_registered(service.base)


PARTIES_CAP = "Too many senders and receivers connected; try again later."


def parties(service: Service) -> float:
    """The server's own count of the parties it holds (its metrics gauge)."""
    with urllib.request.urlopen(f"{service.base}/api/v1/pipe/metrics", timeout=10) as r:
        text = r.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "hoodypipe_parties":
                return float(sample.value)
    raise AssertionError("no hoodypipe_parties gauge")


def test_parties_cap_counts_sockets_and_is_429(tmp_path: Path, clients: Clients) -> None:
    data = tmp_path / "d.bin"
    data.write_bytes(b"x" * 20_000_000)
    with running_service(tmp_path, "--max-parties", "2", "--max-receivers", "1") as service:
        first = clients.receive(service.url("pa", "wait=60"), "--limit-rate", "1M")
        second = clients.receive(service.url("pb", "wait=60"))
        wait_for(lambda: parties(service) == 2, 10, "two waiting receivers")
        # Two pipes only, far under --max-waiting: the sockets are what is full.
        assert_refused(clients.receive(service.url("pc")), 429, PARTIES_CAP)
        assert_refused(clients.curl("--data-binary", "x", service.url("pa")), 429,
                       PARTIES_CAP)
        second.kill()
        wait_for(lambda: parties(service) == 1, 10, "the receiver that left to count")
        sender = clients.send_stream(service.url("pa"), data)
        wait_for(lambda: first.out.exists() and first.out.stat().st_size > 0, 20,
                 "the transfer to start")
        assert parties(service) == 2  # a streaming pipe holds its sender and receiver
        assert_refused(clients.receive(service.url("pd")), 429, PARTIES_CAP)
        first.kill()  # the transfer fails; its sender's socket goes with it
        sender.wait(30)
        wait_for(lambda: parties(service) == 0, 10, "the ended transfer to hold nothing")
        nothing_registered(service.base)
        # Room again: a whole transfer goes through.
        receiver = clients.receive(service.url("pe", "wait=30"))
        wait_until_waiting(service.base, "pe")
        assert clients.curl("--data-binary", "again", service.url("pe")).wait(30) == 0
        assert receiver.wait(30) == 0 and receiver.text() == "again"


def test_broken_chunked_sender_disturbs_nobody_else(
    service: Service, clients: Clients, tmp_path: Path
) -> None:
    data = tmp_path / "ok.bin"
    data.write_bytes(b"y" * 5_000_000)
    good_receiver = clients.receive(service.url("good"), "--limit-rate", "5M")
    bad_receiver = clients.receive(service.url("bad"))
    wait_until_waiting(service.base, "bad", 2)
    good_sender = clients.send_stream(service.url("good"), data)
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as raw:
        raw.sendall(b"PUT /bad HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"5\r\nhello\r\nZZZ\r\nnonsense")
        received = b""
        while chunk := raw.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 200 ")
    assert bad_receiver.wait(30) != 0
    assert good_sender.wait() == 0 and good_receiver.wait() == 0
    assert good_receiver.out.read_bytes() == data.read_bytes()
    nothing_registered(service.base)


def test_options_preflight(service: Service, clients: Clients) -> None:
    run = clients.curl("-X", "OPTIONS", "-H", "Origin: https://example.org",
                       "-H", "Access-Control-Request-Method: PUT",
                       "-H", "Access-Control-Request-Headers: content-type,x-piping",
                       service.url("pre"))
    run.wait(30)
    assert run.status() == 204
    assert run.header("Access-Control-Allow-Origin") == "*"
    assert "PUT" in (run.header("Access-Control-Allow-Methods") or "")
    assert run.header("Access-Control-Allow-Headers") == "content-type,x-piping"
    nothing_registered(service.base)


def test_help_uses_the_request_host(service: Service, clients: Clients) -> None:
    run = clients.curl("-H", "Host: pipe.example.org:8443", service.base + "/help")
    run.wait(30)
    assert run.status() == 200
    assert "curl -T myfile http://pipe.example.org:8443/mypath" in run.text()
