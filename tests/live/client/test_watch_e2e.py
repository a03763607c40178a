"""
``hoodypipe watch`` against the real server (``twistd hoodypipe``): the
outcome as the exit status, ``--exec``, and a feed connection cut mid-transfer
(through a loopback proxy this test can cut).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.protocols import portforward

from tests.kit.service import REPO, Service, running_service, service_env
from tests.kit.transfers import send_file, send_then_vanish
from tests.kit.waiting import eventually


class Watch:
    """A ``hoodypipe watch --json`` process; always ended by the test."""

    def __init__(self, tmp_path: Path, url: str, *args: str) -> None:
        self.out_path = tmp_path / f"watch-{time.monotonic_ns()}.out"
        self.err_path = self.out_path.with_suffix(".err")
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hoodypipe.client.cli", "watch", url, "--json", *args],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                env=service_env(), cwd=REPO,
            )

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            self.stop()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out_path.read_text().splitlines()]

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()


async def wait_for(watch: Watch, timeout: float = 60) -> int:
    code: int = await deferToThread(watch.wait, timeout)
    return code


async def watching(watch: Watch) -> None:
    """Until the watcher has its first event (it is connected)."""
    await eventually(lambda: watch.out_path.stat().st_size > 0, timeout=20)


def feed_of(service: Service, name: str) -> str:
    return f"{service.base}/api/v1/pipe/{name}"


@pytest_twisted.ensureDeferred
async def test_complete_is_exit_0_and_exec_gets_the_done_json(tmp_path: Path) -> None:
    payload = tmp_path / "payload"
    payload.write_bytes(b"z" * 300_000)
    got = tmp_path / "got.json"
    with running_service(tmp_path) as service:
        watch = Watch(tmp_path, feed_of(service, "e2e/ok"), "--exec", f"cat > {got}")
        try:
            await watching(watch)
            await deferToThread(send_file, service, "e2e/ok", payload)
            code = await wait_for(watch)
        finally:
            watch.stop()
    assert code == 0, watch.stderr
    events = watch.events()
    assert events[0]["event"] == "state"
    assert events[-1]["event"] == "done"
    done = json.loads(got.read_text())
    assert done == events[-1]["data"]
    assert done["state"] == "complete" and done["ok"] is True
    assert done["bytes"] == 300_000
    assert done["transferId"]


@pytest_twisted.ensureDeferred
async def test_failed_is_exit_1(tmp_path: Path) -> None:
    with running_service(tmp_path) as service:
        watch = Watch(tmp_path, feed_of(service, "e2e/broken"))
        try:
            await watching(watch)
            await deferToThread(send_then_vanish, service, "e2e/broken")
            code = await wait_for(watch)
        finally:
            watch.stop()
    assert code == 1, watch.stderr
    done = watch.events()[-1]
    assert done["event"] == "done"
    assert done["data"]["state"] == "failed"
    assert done["data"]["reason"] == "Sender disconnected"


@pytest_twisted.ensureDeferred
async def test_a_late_watcher_still_gets_the_outcome(tmp_path: Path) -> None:
    payload = tmp_path / "payload"
    payload.write_bytes(b"z" * 1000)
    with running_service(tmp_path) as service:
        await deferToThread(send_file, service, "e2e/late", payload)
        watch = Watch(tmp_path, feed_of(service, "e2e/late"))
        try:
            code = await wait_for(watch, 30)
        finally:
            watch.stop()
    assert code == 0, watch.stderr
    assert [e["event"] for e in watch.events()][-1] == "done"


@pytest_twisted.ensureDeferred
async def test_exit_2_when_the_server_goes_away(tmp_path: Path) -> None:
    with running_service(tmp_path) as service:
        watch = Watch(tmp_path, feed_of(service, "e2e/gone"),
                      "--tries", "2", "--retry-delay", "0.2")
        try:
            await watching(watch)
            await deferToThread(service.stop)
            code = await wait_for(watch, 30)
        finally:
            watch.stop()
    assert code == 2
    assert "giving up after 2 tries" in watch.stderr


class CuttableProxy(portforward.ProxyFactory):
    """A loopback TCP proxy to the server whose connections the test can cut."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.opened = 0
        self.live: list[portforward.ProxyServer] = []

    def buildProtocol(self, addr: Any) -> portforward.ProxyServer:
        protocol = super().buildProtocol(addr)
        self.opened += 1
        self.live.append(protocol)
        return protocol  # type: ignore[no-any-return]

    def cut(self) -> None:
        for protocol in self.live:
            if protocol.transport is not None:
                protocol.transport.abortConnection()
        self.live.clear()


def slow_send(service: Service, name: str, seconds: float) -> None:
    """A sized transfer paced over ``seconds``, with a curl receiver."""
    chunk, count = b"s" * 65536, 40
    receiver = subprocess.Popen(
        ["curl", "-sS", "--max-time", "60", "-o", "/dev/null", service.url(name)]
    )
    try:
        with socket.create_connection(("127.0.0.1", service.port), timeout=10) as s:
            s.sendall(
                f"POST /{name} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Length: {len(chunk) * count}\r\n\r\n".encode()
            )
            for _ in range(count):
                s.sendall(chunk)
                time.sleep(seconds / count)
            s.settimeout(20)
            answer = b""
            while b"Transfer complete" not in answer:
                more = s.recv(4096)
                if not more:
                    break
                answer += more
        assert receiver.wait(30) == 0
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait(5)


@pytest_twisted.ensureDeferred
async def test_survives_a_feed_connection_cut_mid_transfer(tmp_path: Path) -> None:
    with running_service(tmp_path) as service:
        proxy = CuttableProxy("127.0.0.1", service.port)
        port = reactor.listenTCP(0, proxy, interface="127.0.0.1")  # type: ignore[attr-defined]
        try:
            proxied = f"http://127.0.0.1:{port.getHost().port}/api/v1/pipe/e2e/cut"
            watch = Watch(tmp_path, proxied)
            try:
                await watching(watch)
                sending = deferToThread(slow_send, service, "e2e/cut", 4.0)
                await eventually(
                    lambda: any(e["event"] == "progress" for e in watch.events()), 20
                )
                proxy.cut()
                cut_at = len(watch.events())
                await sending
                code = await wait_for(watch)
            finally:
                watch.stop()
        finally:
            await port.stopListening()
    assert code == 0, watch.stderr
    assert proxy.opened >= 2
    assert "feed interrupted" in watch.stderr
    after = [e["event"] for e in watch.events()[cut_at:]]
    assert after[-1] == "done"
    assert watch.events()[-1]["data"]["ok"] is True
    assert watch.events()[-1]["data"]["bytes"] == 40 * 65536
