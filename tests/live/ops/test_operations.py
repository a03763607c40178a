"""
Operations seen from outside: a real ``twistd hoodypipe`` on loopback, driven
by curl. The graceful drain on SIGTERM, metrics after known transfers, the
health document (GET and HEAD) and the one-line-per-transfer log.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.kit.ops import (
    get_json,
    needs_curl,
    random_file,
    receive,
    send,
    sha256,
    status_code,
)
from tests.kit.service import Service, running_service
from tests.kit.waiting import wait_for

pytestmark = needs_curl

GRACE = 5.0


def health(service: Service) -> dict[str, object]:
    body: dict[str, object] = get_json(f"{service.base}/api/v1/pipe/health")
    return body


def counts(service: Service) -> tuple[object, object]:
    """(active, waiting) from the health document."""
    document = health(service)
    return document["active"], document["waiting"]


def scrape(service: Service) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=5)
    try:
        connection.request("GET", "/api/v1/pipe/metrics")
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type", "").startswith("text/plain")
        text = response.read().decode("utf-8")
    finally:
        connection.close()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def exited_within(service: Service, timeout: float) -> float:
    """Seconds until the process exits (fails the test past ``timeout``)."""
    started = time.monotonic()
    wait_for(lambda: service.process.poll() is not None, timeout, "the process to exit")
    return time.monotonic() - started


def test_drain_lets_a_running_transfer_finish_and_refuses_newcomers(
    tmp_path: Path,
) -> None:
    body = random_file(tmp_path / "body", 400_000, seed=7)
    with running_service(tmp_path, "--grace", str(int(GRACE))) as service:
        receiver = receive(service.url("drain-a"), tmp_path / "got")
        sender = send(service.url("drain-a"), body, tmp_path / "status",
                      "--limit-rate", "200k")
        try:
            wait_for(lambda: health(service)["active"] == 1, 10, "streaming")
            wait_for(lambda: (tmp_path / "got").stat().st_size > 0, 10, "first bytes")
            service.process.send_signal(signal.SIGTERM)
            sigterm = time.monotonic()
            wait_for(lambda: health(service)["draining"], 5, "draining")

            assert status_code(service.url("drain-b"), tmp_path / "late-sender",
                               "--data-binary", "x") == 503
            assert (tmp_path / "late-sender").read_text().startswith("[ERROR] ")
            assert status_code(service.url("drain-c"), tmp_path / "late-rcv") == 503
            assert status_code(f"{service.base}/api/v1/pipe/health",
                               tmp_path / "health") == 503
            assert json.loads((tmp_path / "health").read_text())["draining"] is True

            assert receiver.wait(GRACE + 5) == 0
            assert sender.wait(GRACE + 5) == 0
        finally:
            receiver.stop()
            sender.stop()
        assert sha256(tmp_path / "got") == sha256(body)
        assert sender.lines()[-1] == "[INFO] Transfer complete."
        exited_within(service, GRACE + 5)
        assert time.monotonic() - sigterm < GRACE, "exits once drained, not at grace"
        log = service.log()
    assert "draining: 1 pipe(s) open, grace 5.0s" in log
    assert "transfer complete: pipe 'drain-a', 400000 bytes" in log
    assert "rejected POST '/drain-b': 503 draining" in log


def test_grace_over_fails_what_is_left_and_exits(tmp_path: Path) -> None:
    body = random_file(tmp_path / "body", 3_000_000, seed=8)
    with running_service(tmp_path, "--grace", str(int(GRACE))) as service:
        receiver = receive(service.url("slow"), tmp_path / "got")
        sender = send(service.url("slow"), body, tmp_path / "status",
                      "--limit-rate", "200k")
        waiting = send(service.url("lonely"), body, tmp_path / "lonely")
        try:
            wait_for(lambda: counts(service) == (1, 1), 10,
                     "one pipe streaming and one waiting")
            service.process.send_signal(signal.SIGTERM)
            took = exited_within(service, GRACE + 5)
            assert GRACE - 0.5 <= took < GRACE + 3
            assert receiver.wait(5) != 0, "an aborted body never looks complete"
            sender.wait(5)
            waiting.wait(5)
        finally:
            for party in (receiver, sender, waiting):
                party.stop()
        assert (tmp_path / "got").stat().st_size < len(body.read_bytes())
        assert sender.lines()[-1] == "[ERROR] Server shutting down."
        assert waiting.lines()[-1].startswith("[ERROR] Server shutting down")
        log = service.log()
    assert "grace period of 5.0s over: failing 2 pipe(s)" in log
    assert "transfer failed: pipe 'slow'" in log


def test_a_second_signal_ends_the_drain_at_once_without_a_traceback(
    tmp_path: Path,
) -> None:
    grace = 60
    body = random_file(tmp_path / "body", 3_000_000, seed=9)
    with running_service(tmp_path, "--grace", str(grace)) as service:
        receiver = receive(service.url("long"), tmp_path / "got")
        sender = send(service.url("long"), body, tmp_path / "status",
                      "--limit-rate", "200k")
        try:
            wait_for(lambda: health(service)["active"] == 1, 10, "streaming")
            service.process.send_signal(signal.SIGTERM)
            wait_for(lambda: "draining: 1 pipe(s) open" in service.log(), 5, "the drain")
            assert service.process.poll() is None, "the first signal only drains"
            service.process.send_signal(signal.SIGINT)  # an operator's Ctrl-C
            assert exited_within(service, 10) < 5, f"not the {grace}s grace"
            assert receiver.wait(5) != 0, "an aborted body never looks complete"
            sender.wait(5)
        finally:
            receiver.stop()
            sender.stop()
        assert sender.lines()[-1] == "[ERROR] Server shutting down."
        log = service.log()
    assert "second stop signal: failing 1 pipe(s) now" in log
    assert "Traceback" not in log and "ReactorNotRunning" not in log


def _transfer(service: Service, tmp_path: Path, name: str, size: int) -> None:
    body = random_file(tmp_path / f"{name}.body", size, seed=size)
    receiver = receive(service.url(name), tmp_path / f"{name}.got")
    sender = send(service.url(name), body, tmp_path / f"{name}.status")
    assert sender.wait(20) == 0 and receiver.wait(20) == 0
    assert sha256(tmp_path / f"{name}.got") == sha256(body)


def _failed_transfer(service: Service, tmp_path: Path, sent: int) -> None:
    """A sender that promises 100 kB, sends ``sent`` bytes and hangs up."""
    receiver = receive(service.url("broken"), tmp_path / "broken.got")
    try:
        with socket.create_connection(("127.0.0.1", service.port), timeout=10) as s:
            s.sendall(b"POST /broken HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: 100000\r\n\r\n" + b"z" * sent)
            wait_for(lambda: health(service)["active"] == 1, 10, "streaming")
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
        assert receiver.wait(10) != 0
    finally:
        receiver.stop()


def test_metrics_after_known_transfers(tmp_path: Path) -> None:
    sizes = {"m1": 1000, "m2": 65_543, "m3": 250_000}
    with running_service(tmp_path) as service:
        before = scrape(service)
        assert before[("hoodypipe_transfers_total", (("outcome", "complete"),))] == 0
        for name, size in sizes.items():
            _transfer(service, tmp_path, name, size)
        _failed_transfer(service, tmp_path, sent=20_000)
        assert status_code(service.url("x"), tmp_path / "r1", "-X", "DELETE") == 405
        assert status_code(f"{service.base}/a/../b", tmp_path / "r2",
                           "--path-as-is") == 400

        found = scrape(service)
        assert found[("hoodypipe_transfers_total", (("outcome", "complete"),))] == 3
        assert found[("hoodypipe_transfers_total", (("outcome", "failed"),))] == 1
        relayed = found[("hoodypipe_relayed_bytes_total", ())]
        assert relayed == sum(sizes.values()) + 20_000
        count = "hoodypipe_transfer_duration_seconds_count"
        assert found[(count, (("outcome", "complete"),))] == 3
        assert found[(count, (("outcome", "failed"),))] == 1
        rejected = "hoodypipe_rejected_requests_total"
        assert found[(rejected, (("reason", "method"),))] == 1
        assert found[(rejected, (("reason", "bad_name"),))] == 1
        assert found[("hoodypipe_active_pipes", ())] == 0
        assert found[("hoodypipe_waiting_pipes", ())] == 0
        assert found[("process_resident_memory_bytes", ())] > 0

        waiting = receive(service.url("m-wait"), tmp_path / "m-wait")
        try:
            wait_for(lambda: scrape(service)[("hoodypipe_waiting_pipes", ())] == 1,
                     10, "a waiting pipe in the gauge")
        finally:
            waiting.stop()
        wait_for(lambda: scrape(service)[("hoodypipe_waiting_pipes", ())] == 0,
                 10, "the gauge back at 0")
        log = service.log()
    assert "transfer complete: pipe 'm1', 1000 bytes" in log
    assert "transfer failed: pipe 'broken', 20000 bytes" in log
    assert "Sender disconnected" in log
    assert "rejected DELETE '/x': 405 method" in log


def test_health_answers_get_and_head(service: Service) -> None:
    for method in ("GET", "HEAD"):
        connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=5)
        try:
            connection.request(method, "/api/v1/pipe/health")
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        assert response.status == 200
        assert response.getheader("Content-Type") == "application/json"
        assert response.getheader("Cache-Control") == "no-store"
        if method == "HEAD":
            assert body == b""
            continue
        document = json.loads(body)
        assert set(document) == {"status", "version", "uptimeSec", "waiting",
                                 "active", "draining",
                                 "service", "started", "pid", "built", "memory", "fds"}
        assert document["status"] == "ok" and document["draining"] is False
        assert document["uptimeSec"] >= 0
