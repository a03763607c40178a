"""
Real curl senders and receivers for the end-to-end tests.

Every process started here is bounded by a deadline and killed if it
outlives it; tests wait on conditions (a process exiting, a counter
reaching a value), never on fixed sleeps.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import attrs

from tests.kit.waiting import wait_for

DEADLINE = 120.0


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@attrs.define
class Curl:
    """One running curl, its output file and its status text."""

    process: subprocess.Popen[bytes]
    out: Path
    err: Path
    headers: Path

    def wait(self, timeout: float = DEADLINE) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            raise AssertionError(f"curl did not finish in {timeout}s") from None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)

    def text(self) -> str:
        return self.out.read_text(errors="replace") if self.out.exists() else ""

    def header_text(self) -> str:
        return self.headers.read_text(errors="replace") if self.headers.exists() else ""

    def header(self, name: str) -> str | None:
        """The last response's value of header ``name`` (case-insensitive)."""
        blocks = self.header_text().replace("\r\n", "\n").strip().split("\n\n")
        for line in blocks[-1].split("\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None

    def status(self) -> int:
        blocks = self.header_text().replace("\r\n", "\n").strip().split("\n\n")
        return int(blocks[-1].split()[1])


class Clients:
    """Starts curls in a directory and makes sure every one of them is stopped."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.started: list[Curl] = []
        self._count = 0

    def curl(self, *args: str, stdin: Any = subprocess.DEVNULL) -> Curl:
        self._count += 1
        base = self.dir / f"curl{self._count}"
        out, err, headers = (base.with_suffix(s) for s in (".out", ".err", ".hdr"))
        command = ["curl", "-sSN", "--max-time", str(int(DEADLINE)), "-D", str(headers),
                   "-o", str(out), *args]
        process = subprocess.Popen(command, stdin=stdin, stderr=err.open("wb"))
        running = Curl(process, out, err, headers)
        self.started.append(running)
        return running

    def receive(self, url: str, *args: str) -> Curl:
        return self.curl(*args, url)

    def send_file(self, url: str, path: Path, *args: str) -> Curl:
        return self.curl("-T", str(path), *args, url)

    def send_stream(self, url: str, path: Path, *args: str) -> Curl:
        """A chunked send: curl reads the file from a pipe (``curl -T -``)."""
        cat = subprocess.Popen(["cat", str(path)], stdout=subprocess.PIPE)
        assert cat.stdout is not None
        running = self.curl("-T", "-", *args, url, stdin=cat.stdout)
        cat.stdout.close()
        return running

    def stop_all(self) -> None:
        for running in self.started:
            if running.process.poll() is None:
                running.process.kill()
            running.process.wait(5)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def nothing_registered(base: str) -> None:
    """Wait until the server holds no waiting and no active pipe."""
    def empty() -> bool:
        health = get_json(f"{base}/api/v1/pipe/health")
        return bool(health["waiting"] == 0 and health["active"] == 0)
    wait_for(empty, 10, "no waiting or active pipes")


def wait_until_waiting(base: str, name: str, count: int = 1) -> None:
    """Wait until ``name`` is registered (a party is waiting on it)."""
    def registered() -> bool:
        health = get_json(f"{base}/api/v1/pipe/health")
        return bool(health["waiting"] >= count)
    wait_for(registered, 10, f"{count} waiting pipe(s)")
