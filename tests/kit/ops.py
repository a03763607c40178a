"""
curl as the parties of a pipe, for the real-socket tests of operations.

Senders, receivers and ``?progress`` spectators are real curl processes, as
users run them; every wait here has a deadline and every process is ended.
The helpers are tested in tests/live/kit/test_curl_kit.py against a real server.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import attrs
import pytest

CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed")


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
