"""
Start the real hoodypipe service (``twistd -n hoodypipe``) on loopback for a test.

The process runs from this checkout (PYTHONPATH points at the repo root, so
the source tree's dropin and package win) and is always stopped at the end.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import attrs

#: The checkout: tests/kit/service.py -> tests/kit -> tests -> the repo root.
REPO = Path(__file__).resolve().parents[2]
TWISTD = Path(sys.executable).parent / "twistd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM,
                 timeout: float = 10.0) -> int | None:
    """Ask ``process`` to stop with ``sig``; kill it if it outlives ``timeout``."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    return process.returncode


@attrs.define
class Service:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, name: str, query: str = "") -> str:
        return f"{self.base}/{name}" + (f"?{query}" if query else "")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def wait_until_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"hoodypipe exited early:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/api/v1/pipe/health", timeout=2
            ) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"hoodypipe did not start listening:\n{log.read_text()}")


def _with_file_limit(limit: int | None) -> Callable[[], None] | None:
    if limit is None:
        return None

    def lower() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    return lower


@contextmanager
def running_service(
    tmp_path: Path, *args: str, file_limit: int | None = None,
    launcher: Sequence[str] = (),
) -> Iterator[Service]:
    """Run ``twistd -n hoodypipe --listen tcp:PORT:interface=127.0.0.1 *args``,
    with a soft open-file limit of ``file_limit`` if given; ``launcher`` goes
    before the twistd path (``tests/kit/slow_hash.py``)."""
    port = free_port()
    log_path = tmp_path / f"hoodypipe-{port}.log"
    command = [
        *launcher, str(TWISTD), "--nodaemon", "--pidfile=", f"--logfile={log_path}",
        "hoodypipe", "--listen", f"tcp:{port}:interface=127.0.0.1", *args,
    ]
    process = subprocess.Popen(command, env=service_env(), cwd=tmp_path,
                               preexec_fn=_with_file_limit(file_limit))
    service = Service(process, port, log_path)
    try:
        wait_until_listening(port, process, log_path)
        yield service
    finally:
        service.stop()
