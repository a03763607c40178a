"""
The access log is the operator's choice: off by default, every request with
``--access-log``; the transfer and refusal lines are written either way.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kit.clients import Clients, wait_until_waiting
from tests.kit.service import running_service
from tests.kit.waiting import wait_for


def _one_transfer_and_one_refusal(tmp_path: Path, clients: Clients, *args: str) -> str:
    payload = tmp_path / "payload"
    payload.write_bytes(b"p" * 5000)
    with running_service(tmp_path, *args) as service:
        receiver = clients.receive(service.url("logged"))
        wait_until_waiting(service.base, "logged")
        sender = clients.send_file(service.url("logged"), payload, "-A", "sender-agent/1")
        assert sender.wait() == 0 and receiver.wait() == 0
        refused = clients.curl("-X", "DELETE", service.url("logged"))
        assert refused.wait() == 0 and refused.status() == 405
        wait_for(lambda: "rejected DELETE '/logged': 405" in service.log(), 10,
                 "the refusal line")
        wait_for(lambda: "transfer complete: pipe 'logged', 5000 bytes" in service.log(),
                 10, "the transfer line")
        return service.log()


def test_by_default_one_line_per_transfer_and_one_per_refusal(
    tmp_path: Path, clients: Clients
) -> None:
    log = _one_transfer_and_one_refusal(tmp_path, clients)
    about_the_pipe = [line for line in log.splitlines() if "logged" in line]
    assert len(about_the_pipe) == 2, about_the_pipe
    assert "sender-agent/1" not in log


@pytest.mark.parametrize("method", ["PUT", "GET", "DELETE"])
def test_access_log_on_request(tmp_path: Path, clients: Clients, method: str) -> None:
    log = _one_transfer_and_one_refusal(tmp_path, clients, "--access-log")
    (line,) = [line for line in log.splitlines() if f'"{method} /logged HTTP/1.1"' in line]
    assert '"127.0.0.1"' in line
    if method == "PUT":
        assert '" 200 ' in line and '"sender-agent/1"' in line
    if method == "DELETE":
        assert '" 405 ' in line
