"""
curl as the parties of a pipe, for the real-socket tests of operations.

Senders, receivers and ``?progress`` spectators are real curl processes, as
users run them; every wait here has a deadline and every process is ended.
The helpers are tested at the bottom against a real server.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import random
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import attrs
import pytest

from tests.service import Service

CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed")

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T], timeout: float, what: str, interval: float = 0.05
) -> T:
    """Poll ``condition`` until it returns something true, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def random_file(path: Path, size: int, seed: int) -> Path:
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def get_json(url: str, timeout: float = 5.0) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read())


@attrs.define
class Curl:
    """One curl process; its response body goes to ``out``."""

    process: subprocess.Popen[bytes]
    out: Path
    err: Path

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(
                f"curl still running after {timeout}s: {self.process.args!r}"
            ) from None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def text(self) -> str:
        return self.out.read_text(errors="replace")

    def lines(self) -> list[str]:
        return self.text().splitlines()


def _curl(out: Path, args: list[str]) -> Curl:
    assert CURL is not None
    err = out.with_name(out.name + ".err")
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen([CURL, "-sS", "--no-buffer", *args],
                                   stdout=stdout, stderr=stderr)
    return Curl(process, out, err)


def receive(url: str, out: Path, *extra: str) -> Curl:
    """GET ``url`` into ``out``."""
    return _curl(out, [*extra, url])


def send(url: str, body: Path, out: Path, *extra: str) -> Curl:
    """POST ``body`` (sized, no ``Expect: 100-continue``); status lines to ``out``."""
    return _curl(out, ["-H", "Expect:", "-H", "Content-Type: application/octet-stream",
                       "--data-binary", f"@{body}", *extra, url])


def status_code(url: str, out: Path, *extra: str, timeout: float = 10) -> int:
    """Run one curl to the end; its HTTP status."""
    assert CURL is not None
    done = subprocess.run([CURL, "-sS", "-o", str(out), "-w", "%{http_code}",
                           "-m", str(timeout), *extra, url],
                          capture_output=True, timeout=timeout + 5, check=False)
    return int(done.stdout or b"0")


class Spectator:
    """``curl -N URL?progress``: the server-sent events, parsed as they come."""

    def __init__(self, url: str) -> None:
        assert CURL is not None
        self.url = url
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.done = threading.Event()
        self.process = subprocess.Popen(
            [CURL, "-sSN", "-H", "Accept: text/event-stream", url],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        name, data = "message", ""
        for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
            elif line == "":
                if data:
                    self.events.append((name, json.loads(data)))
                    if name == "done":
                        self.done.set()
                name, data = "message", ""

    def wait_done(self, timeout: float) -> dict[str, Any]:
        if not self.done.wait(timeout):
            self.stop()
            raise AssertionError(f"no done event in {timeout}s from {self.url}: "
                                 f"{[n for n, _ in self.events]}")
        return [data for name, data in self.events if name == "done"][-1]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)
        self._reader.join(5)


# -- the helpers, tested ----------------------------------------------------


def test_wait_for_returns_the_value_or_fails_in_time() -> None:
    assert wait_for(lambda: 5, 1, "five") == 5
    started = time.monotonic()
    with pytest.raises(AssertionError, match="never"):
        wait_for(lambda: 0, 0.2, "never")
    assert time.monotonic() - started < 2


@needs_curl
def test_spectator_parses_events_until_done() -> None:
    stream = (b": hello\n\n"
              b"retry: 1000\nid: 1\nevent: state\ndata: {\"state\":\"idle\"}\n\n"
              b"id: 2\nevent: done\ndata: {\"ok\":true}\n\n")

    class Canned(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write(stream)
            self.wfile.flush()
            time.sleep(0.5)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Canned)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        spectator = Spectator(f"http://127.0.0.1:{server.server_port}/x?progress")
        assert spectator.wait_done(10) == {"ok": True}
        spectator.stop()
        assert spectator.events == [("state", {"state": "idle"}),
                                    ("done", {"ok": True})]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@needs_curl
def test_curl_parties_move_a_body(
    service: Service, tmp_path: Path
) -> None:
    body = random_file(tmp_path / "body", 150_000, seed=1)
    receiver = receive(service.url("helper"), tmp_path / "got")
    sender = send(service.url("helper"), body, tmp_path / "status")
    assert sender.wait(20) == 0 and receiver.wait(20) == 0
    assert sha256(tmp_path / "got") == sha256(body)
    assert sender.lines()[-1] == "[INFO] Transfer complete."
    assert status_code(service.url("nope"), tmp_path / "x", "-X", "DELETE") == 405
    health = get_json(f"{service.base}/api/v1/pipe/health")
    assert health["status"] == "ok"
