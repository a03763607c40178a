"""
The systemd units, checked by systemd's own tools and by running the server
the way they do: an inherited listening socket, ``$NOTIFY_SOCKET``, and the
sandbox's memory and system-call limits.

The shipped service assumes an install in /opt/hoodypipe; tests render a copy
whose ExecStart points at this venv's twistd, since ``systemd-analyze
verify`` insists the binary exists.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hoodypipe.settings import Settings
from tests.kit.ops import (
    get_json,
    needs_curl,
    random_file,
    receive,
    send,
    sha256,
)
from tests.kit.service import (
    REPO,
    TWISTD,
    free_port,
    service_env,
    stop_process,
    wait_until_listening,
)
from tests.kit.waiting import wait_for

UNITS = REPO / "etc" / "systemd"
SHIPPED_TWISTD = "/opt/hoodypipe/bin/twistd"
ANALYZE = shutil.which("systemd-analyze")
SOCKET_ACTIVATE = shutil.which("systemd-socket-activate") or next(
    (p for p in ("/lib/systemd/systemd-socket-activate",
                 "/usr/lib/systemd/systemd-socket-activate") if os.path.exists(p)),
    None,
)
STRACE = shutil.which("strace")


def unit_lines(name: str) -> list[tuple[str, str]]:
    """``(key, value)`` of every setting, continuation lines joined."""
    text = (UNITS / name).read_text().replace("\\\n", " ")
    settings = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.append((key.strip(), " ".join(value.split())))
    return settings


def unit_value(name: str, key: str) -> str:
    values = [v for k, v in unit_lines(name) if k == key]
    assert len(values) == 1, f"{key} in {name}: {values}"
    return values[0]


def render_units(into: Path) -> Path:
    service = (UNITS / "hoodypipe.service").read_text()
    assert SHIPPED_TWISTD in service
    rendered = service.replace(SHIPPED_TWISTD, str(TWISTD))
    (into / "hoodypipe.service").write_text(rendered)
    shutil.copy(UNITS / "hoodypipe.socket", into / "hoodypipe.socket")
    return into


# -- the unit files -----------------------------------------------------------


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_passes(tmp_path: Path) -> None:
    render_units(tmp_path)
    assert ANALYZE is not None
    done = subprocess.run(
        [ANALYZE, "verify", "hoodypipe.socket", "hoodypipe.service"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    mentions = [line for line in (done.stdout + done.stderr).splitlines()
                if "hoodypipe" in line]
    assert done.returncode == 0 and mentions == [], done.stdout + done.stderr


def test_service_runs_twistd_on_the_inherited_socket() -> None:
    command = unit_value("hoodypipe.service", "ExecStart").split()
    assert command[:3] == [SHIPPED_TWISTD, "--nodaemon", "--pidfile="]
    assert command[command.index("hoodypipe") + 1:] == [
        "--listen", "systemd:domain=INET6:index=0", "--state-dir", "${STATE_DIRECTORY}"]
    assert unit_value("hoodypipe.service", "StateDirectory") == "hoodypipe"
    assert "--logger=hoodypipe.ops.translog.text_observer" in command
    assert unit_value("hoodypipe.service", "Type") == "notify"
    assert unit_value("hoodypipe.service", "Requires") == "hoodypipe.socket"
    assert unit_value("hoodypipe.socket", "ListenStream") == "[::]:8080"
    assert unit_value("hoodypipe.socket", "BindIPv6Only") == "both"


def test_stop_timeout_covers_the_grace_period() -> None:
    seconds = int(unit_value("hoodypipe.service", "TimeoutStopSec"))
    assert Settings().grace + 10 <= seconds <= Settings().grace + 30


def test_service_is_sandboxed() -> None:
    settings = dict(unit_lines("hoodypipe.service"))
    expected = {
        "DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
        "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "CapabilityBoundingSet": "", "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes", "RestrictNamespaces": "yes",
        "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes",
        "RestrictRealtime": "yes", "RestrictSUIDSGID": "yes",
    }
    assert {key: settings.get(key) for key in expected} == expected
    lines = unit_lines("hoodypipe.service")
    filters = [v for k, v in lines if k == "SystemCallFilter"]
    assert filters[0] == "@system-service"
    assert not any(k.startswith("Environment") for k, _ in lines)


# -- the server as systemd runs it -------------------------------------------


@contextmanager
def notify_socket() -> Iterator[tuple[str, socket.socket]]:
    """A datagram socket in the abstract namespace, as ``$NOTIFY_SOCKET``."""
    name = f"hoodypipe-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        yield "@" + name, sock


def messages(sock: socket.socket, timeout: float) -> list[str]:
    """Every notification that arrived within ``timeout``."""
    got = []
    sock.settimeout(timeout)
    try:
        while True:
            got.append(sock.recv(4096).decode())
            sock.settimeout(0.2)
    except TimeoutError:
        return got


def stop(process: subprocess.Popen[bytes]) -> None:
    stop_process(process, timeout=15)


def transfer(base: str, tmp_path: Path, name: str, size: int = 300_000,
             query: str = "") -> None:
    body = random_file(tmp_path / f"{name}.body", size, seed=size)
    receiver = receive(f"{base}/{name}", tmp_path / f"{name}.got", "-m", "30")
    sender = send(f"{base}/{name}{query}", body, tmp_path / f"{name}.status", "-m", "30")
    try:
        assert sender.wait(40) == 0 and receiver.wait(40) == 0
    finally:
        sender.stop()
        receiver.stop()
    assert sha256(tmp_path / f"{name}.got") == sha256(body)
    assert sender.lines()[-1] == "[INFO] Transfer complete."


def listening(port: int) -> bool:
    """Is a socket listening on 127.0.0.1:``port``? (Asked without connecting.)"""
    wanted = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted and fields[3] == "0A":
            return True
    return False


@needs_curl
@pytest.mark.skipif(SOCKET_ACTIVATE is None, reason="systemd-socket-activate missing")
def test_transfer_through_a_socket_activated_server(tmp_path: Path) -> None:
    assert SOCKET_ACTIVATE is not None
    port = free_port()
    log = tmp_path / "hoodypipe.log"
    # systemd-socket-activate passes only the variables it is told to; real
    # systemd always names the descriptors (LISTEN_FDNAMES), so do the same.
    process = subprocess.Popen(
        [SOCKET_ACTIVATE, "-l", f"127.0.0.1:{port}", "--fdname=http",
         "-E", f"PYTHONPATH={REPO}",
         str(TWISTD), "--nodaemon", "--pidfile=", f"--logfile={log}",
         "hoodypipe", "--listen", "systemd:domain=INET:index=0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        wait_for(lambda: listening(port), 10, "systemd-socket-activate's socket")
        # The first connection is what starts the server: it waits in the
        # socket's backlog meanwhile instead of being refused.
        transfer(f"http://127.0.0.1:{port}", tmp_path, "activated")
        transfer(f"http://127.0.0.1:{port}", tmp_path, "again", 5000)
    finally:
        stop(process)
    assert "transfer complete: pipe 'activated'" in log.read_text()


@needs_curl
def test_ready_and_stopping_reach_notify_socket(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "hoodypipe.log"
    with notify_socket() as (address, sock):
        env = service_env() | {"NOTIFY_SOCKET": address}
        process = subprocess.Popen(
            [str(TWISTD), "--nodaemon", "--pidfile=", f"--logfile={log}", "hoodypipe",
             "--listen", f"tcp:{port}:interface=127.0.0.1", "--grace", "5"],
            env=env, cwd=tmp_path)
        try:
            wait_until_listening(port, process, log)
            assert messages(sock, 5) == ["READY=1\nSTATUS=Serving"]
            process.send_signal(signal.SIGTERM)
            assert messages(sock, 5)[0] == "STOPPING=1\nSTATUS=Draining 0 pipe(s)"
            process.wait(10)
        finally:
            stop(process)


def test_a_port_in_use_stops_twistd_at_once_without_ready(tmp_path: Path) -> None:
    """It used to log a traceback, run on listening nowhere and send READY=1."""
    with socket.socket() as taken, notify_socket() as (address, sock):
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = service_env() | {"NOTIFY_SOCKET": address}
        process = subprocess.Popen(
            [str(TWISTD), "--nodaemon", "--pidfile=", "hoodypipe",
             "--listen", f"tcp:{port}:interface=127.0.0.1"],
            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            try:
                out, _ = process.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                pytest.fail(f"twistd still runs 20 s after failing to listen; "
                            f"notifications: {messages(sock, 0.2)}")
        finally:
            stop(process)
        output = out.decode(errors="replace")
        assert process.returncode != 0, output
        assert f"hoodypipe: cannot listen on 127.0.0.1:{port}: Address already in use" in output
        assert "Traceback" not in output
        assert not any("READY=1" in m for m in messages(sock, 0.2))


def _refuse_write_execute() -> bool:
    """Can this kernel forbid W+X memory (prctl PR_SET_MDWE, Linux 6.3+)?"""
    return sys.platform == "linux" and subprocess.run(
        [sys.executable, "-c", _MDWE + "raise SystemExit(0)"],
        capture_output=True, check=False, timeout=30).returncode == 0


# What MemoryDenyWriteExecute=yes does with seccomp, done by the kernel itself:
# no mapping may be (or become) writable and executable. It sticks across exec.
_MDWE = (
    "import ctypes, os, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "if libc.prctl(65, 1, 0, 0, 0) != 0:\n"
    "    raise SystemExit('PR_SET_MDWE: ' + os.strerror(ctypes.get_errno()))\n"
)


@needs_curl
@pytest.mark.skipif(not _refuse_write_execute(), reason="no PR_SET_MDWE here")
def test_server_works_without_writable_executable_memory(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "hoodypipe.log"
    launcher = _MDWE + "os.execv(sys.argv[1], sys.argv[1:])\n"
    process = subprocess.Popen(
        [sys.executable, "-c", launcher, sys.executable, str(TWISTD), "--nodaemon",
         "--pidfile=", f"--logfile={log}", "hoodypipe",
         "--listen", f"tcp:{port}:interface=127.0.0.1"],
        env=service_env(), cwd=tmp_path)
    try:
        wait_until_listening(port, process, log)
        transfer(f"http://127.0.0.1:{port}", tmp_path, "mdwe")
        assert get_json(f"http://127.0.0.1:{port}/api/v1/pipe/health")["status"] == "ok"
    finally:
        stop(process)


def _syscall_filter_allows() -> set[str]:
    """The system calls the unit's SystemCallFilter lines leave allowed."""
    assert ANALYZE is not None

    def expand(group: str, seen: set[str]) -> set[str]:
        listing = subprocess.run([ANALYZE, "syscall-filter", group], check=True,
                                 capture_output=True, text=True, timeout=30).stdout
        names: set[str] = set()
        for line in listing.splitlines()[1:]:
            item = line.strip()
            if not item or item.startswith("#"):
                continue
            if item.startswith("@"):
                if item not in seen:
                    seen.add(item)
                    names |= expand(item, seen)
            else:
                names.add(item)
        return names

    allowed: set[str] = set()
    for value in (v for k, v in unit_lines("hoodypipe.service")
                  if k == "SystemCallFilter"):
        deny = value.startswith("~")
        for group in value.lstrip("~").split():
            names = expand(group, {group}) if group.startswith("@") else {group}
            allowed = allowed - names if deny else allowed | names
    return allowed


@needs_curl
@pytest.mark.skipif(STRACE is None or ANALYZE is None,
                    reason="needs strace and systemd-analyze")
def test_server_stays_within_the_system_call_filter(tmp_path: Path) -> None:
    assert STRACE is not None
    allowed = _syscall_filter_allows()
    assert {"read", "write", "epoll_wait", "accept4"} <= allowed
    port = free_port()
    log = tmp_path / "hoodypipe.log"
    trace = tmp_path / "strace.txt"
    process = subprocess.Popen(
        [STRACE, "-f", "-qq", "-o", str(trace), str(TWISTD), "--nodaemon",
         "--pidfile=", f"--logfile={log}", "hoodypipe",
         "--listen", f"tcp:{port}:interface=127.0.0.1", "--grace", "5",
         "--state-dir", str(tmp_path / "state")],
        env=service_env(), cwd=tmp_path, stderr=subprocess.PIPE)
    try:
        try:
            wait_until_listening(port, process, log)
        except RuntimeError:
            assert process.stderr is not None
            error = process.stderr.read().decode(errors="replace")
            if "ptrace" in error or "Operation not permitted" in error:
                pytest.skip(f"strace cannot trace here: {error.strip()}")
            raise
        base = f"http://127.0.0.1:{port}"
        transfer(base, tmp_path, "traced")
        transfer(base, tmp_path, "hashed", query="?sha256")  # the worker threads too
        assert get_json(f"{base}/api/v1/pipe/health")["status"] == "ok"
        scraped = tmp_path / "metrics"
        receive(f"{base}/api/v1/pipe/metrics", scraped).wait(10)
        # Find the traced twistd under strace, and stop it as systemd would.
        twistd = wait_for(lambda: _child_of(process.pid), 5, "the traced twistd")
        assert twistd is not None
        os.kill(twistd, signal.SIGTERM)
        process.wait(20)
    finally:
        stop(process)
    used = set(re.findall(r"^\d+\s+([a-z0-9_]+)\(", trace.read_text(), re.M))
    assert len(used) > 20
    if os.geteuid() == 0:
        # sqlite (the --state-dir store) hands its journal to the database's
        # owner only when it runs as root, and ignores a refusal; under the
        # unit it runs as the DynamicUser, so this call never happens.
        used.discard("fchown")
    assert used - allowed == set()


def _child_of(pid: int) -> int | None:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None
