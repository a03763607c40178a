"""
The twistd plugin run for real: a dropin that imports nothing, UsageErrors from
twistd, and the TCP, UNIX and TLS listeners. Option parsing alone is tested in
memory in ``tests/unit/test_tap.py``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.kit.clients import Clients, nothing_registered, wait_until_waiting
from tests.kit.service import REPO, TWISTD, free_port, service_env, wait_until_listening
from tests.kit.tls import self_signed_pem
from tests.kit.waiting import wait_for


def test_scanning_the_dropin_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from twisted.plugin import getPlugins\n"
        "from twisted.application.service import IServiceMaker\n"
        "names = [p.tapname for p in getPlugins(IServiceMaker)]\n"
        "assert 'hoodypipe' in names, names\n"
        "heavy = [m for m in ('hoodypipe.tap', 'hoodypipe.service', 'klein', "
        "'twisted.internet.reactor') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=service_env(), cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_bad_listen_endpoint_is_reported(tmp_path: Path) -> None:
    done = subprocess.run([str(TWISTD), "--nodaemon", "--pidfile=", "hoodypipe",
                           "--listen", "nonsense:1"], env=service_env(), cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "--listen 'nonsense:1'" in done.stdout + done.stderr


def test_tcp_and_unix_listeners_serve_the_same_pipes(tmp_path: Path, clients: Clients) -> None:
    port = free_port()
    sock_path = tmp_path / "pipe.sock"
    log = tmp_path / "twistd.log"
    process = subprocess.Popen(
        [str(TWISTD), "--nodaemon", "--pidfile=", f"--logfile={log}", "hoodypipe",
         "--listen", f"tcp:{port}:interface=127.0.0.1", "--listen", f"unix:{sock_path}"],
        env=service_env(), cwd=tmp_path)
    try:
        wait_until_listening(port, process, log)
        wait_for(sock_path.exists, 10, "the unix socket")
        payload = tmp_path / "p.bin"
        payload.write_bytes(os.urandom(500_000))
        receiver = clients.curl("--unix-socket", str(sock_path), "http://x/both")
        wait_until_waiting(f"http://127.0.0.1:{port}", "both")
        sender = clients.send_file(f"http://127.0.0.1:{port}/both", payload)
        assert sender.wait(60) == 0 and receiver.wait(60) == 0
        assert receiver.out.read_bytes() == payload.read_bytes()
        nothing_registered(f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(15)


def test_waiting_sender_gets_keepalive_lines(tmp_path: Path, clients: Clients) -> None:
    from tests.kit.service import running_service
    with running_service(tmp_path, "--keepalive-interval", "0.5") as service:
        sender = clients.curl("--data-binary", "hi", service.url("ka", "wait=30"))
        wait_for(lambda: sender.text().count("[INFO] Still waiting for 1 receiver(s)...") >= 2,
                 15, "two keep-alive lines")
        receiver = clients.receive(service.url("ka"))
        assert receiver.wait(30) == 0 and sender.wait(30) == 0
        assert receiver.out.read_bytes() == b"hi"


def test_idle_timeout_ends_a_stalled_transfer(tmp_path: Path) -> None:
    from tests.kit.service import running_service
    with running_service(tmp_path, "--idle-timeout", "1") as service:
        receiver = socket.create_connection(("127.0.0.1", service.port), timeout=30)
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        receiver.sendall(b"GET /stall HTTP/1.1\r\nHost: t\r\n\r\n")
        wait_until_waiting(service.base, "stall")
        sender = socket.create_connection(("127.0.0.1", service.port), timeout=30)
        sender.sendall(b"PUT /stall HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        sender.setblocking(False)
        block = b"%x\r\n" % 65536 + b"s" * 65536 + b"\r\n"
        status = b""
        deadline = time.monotonic() + 30
        while b"[ERROR]" not in status and time.monotonic() < deadline:
            try:
                sender.send(block)
            except BlockingIOError:
                pass
            try:
                chunk = sender.recv(65536)
                if not chunk:
                    break
                status += chunk
            except BlockingIOError:
                time.sleep(0.02)
        assert b"[ERROR] Idle timeout." in status
        receiver.settimeout(10)
        got = b""
        try:
            while chunk := receiver.recv(1 << 20):
                got += chunk
        except ConnectionResetError:
            pass
        assert not got.endswith(b"0\r\n\r\n"), "an aborted body must not look complete"
        sender.close()
        receiver.close()
        nothing_registered(service.base)


def test_ssl_listener_serves_pipes(tmp_path: Path, clients: Clients) -> None:
    pem = self_signed_pem(tmp_path)
    port, tls_port = free_port(), free_port()
    log = tmp_path / "twistd.log"
    process = subprocess.Popen(
        [str(TWISTD), "--nodaemon", "--pidfile=", f"--logfile={log}", "hoodypipe",
         "--listen", f"tcp:{port}:interface=127.0.0.1",
         "--listen", f"ssl:{tls_port}:interface=127.0.0.1:privateKey={pem}"],
        env=service_env(), cwd=tmp_path)
    try:
        wait_until_listening(port, process, log)
        payload = tmp_path / "p.bin"
        payload.write_bytes(os.urandom(2_000_000))
        receiver = clients.curl("--cacert", str(pem), f"https://localhost:{tls_port}/tls")
        wait_until_waiting(f"http://127.0.0.1:{port}", "tls")
        sender = clients.send_file(f"https://localhost:{tls_port}/tls", payload,
                                   "--cacert", str(pem))
        assert sender.wait(60) == 0 and receiver.wait(60) == 0
        assert receiver.out.read_bytes() == payload.read_bytes()
        nothing_registered(f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(15)


def test_http2_clients_are_served_over_http_1_1_on_tls(tmp_path: Path, clients: Clients) -> None:
    """With twisted[http2] installed a stock Site offers h2 through ALPN, and
    every request over it failed ('H2Stream' has no '_command'). The relay
    offers http/1.1 only: curl --http2 falls back and sends and receives."""
    from twisted.web.http import H2_ENABLED

    from tests.kit.service import running_service

    assert H2_ENABLED, "twisted[http2] is in the test extra: pip install -e '.[test]'"
    pem = self_signed_pem(tmp_path)
    tls_port = free_port()
    tls = f"ssl:{tls_port}:interface=127.0.0.1:privateKey={pem}"
    with running_service(tmp_path, "--listen", tls) as service:
        payload = tmp_path / "p.bin"
        payload.write_bytes(os.urandom(3_000_000))
        for name, send in (("h2sized", clients.send_file), ("h2chunked", clients.send_stream)):
            url = f"https://localhost:{tls_port}/{name}"
            receiver = clients.curl("--http2", "-k", "-v", url)
            wait_until_waiting(service.base, name)
            sender = send(url, payload, "--http2", "-k")
            assert sender.wait(60) == 0 and receiver.wait(60) == 0
            assert receiver.out.read_bytes() == payload.read_bytes()
            assert sender.text().endswith("[INFO] Transfer complete.\n")
            assert "ALPN: offers h2" in receiver.err.read_text()  # it did ask for HTTP/2
            assert receiver.header_text().startswith("HTTP/1.1 200")
        nothing_registered(service.base)
        assert "Traceback" not in service.log()


def test_twistd_refuses_to_start_on_a_twisted_without_what_the_byte_path_needs(
    tmp_path: Path,
) -> None:
    """As if a Twisted release had renamed an internal: one clear line, at once."""
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "sitecustomize.py").write_text(
        "from twisted.web import http\n"
        "del http.HTTPChannel._respondToBadRequestAndDisconnect\n")
    env = service_env()
    env["PYTHONPATH"] = env["PYTHONPATH"] + os.pathsep + str(broken)
    done = subprocess.run([str(TWISTD), "--nodaemon", "--pidfile=", "hoodypipe",
                           "--listen", "tcp:0:interface=127.0.0.1"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    import twisted

    assert done.returncode != 0
    assert (f"hoodypipe cannot run on Twisted {twisted.__version__}: "
            "HTTPChannel._respondToBadRequestAndDisconnect() is gone") in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
