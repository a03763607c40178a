"""
Spectator caps against the real server (``twistd hoodypipe``), from outside:
the refusal is worded and counted like every other refusal, and a path's
spectators count against its cap whatever state the path is in.

The basic per-path and default caps are in ``test_feeds.py``.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.kit.clients import Clients, get_json
from tests.kit.service import Service, running_service
from tests.kit.spectators import never_reading_spectator, parse_events
from tests.kit.waiting import wait_for


def metric(service: Service, name: str, **labels: str) -> float:
    """One sample of the server's /api/v1/pipe/metrics."""
    with urllib.request.urlopen(f"{service.base}/api/v1/pipe/metrics", timeout=10) as r:
        text = r.read().decode()
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if wanted else "")
    found = re.search("^" + pattern + r" (\S+)$", text, re.M)
    assert found is not None, f"{name} {labels} not in the metrics"
    return float(found.group(1))


def curl_head_and_body(url: str) -> tuple[str, bytes]:
    """One curl GET: (the response head as text, the body)."""
    done = subprocess.run(["curl", "-sS", "--max-time", "10", "-D", "-", url],
                          capture_output=True, timeout=20, check=True)
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    return head.decode("latin-1"), body


def test_the_spectator_429_is_a_counted_refusal(tmp_path: Path, clients: Clients) -> None:
    with running_service(tmp_path, "--max-spectators", "2") as service:
        url = service.url("busy-watch", "progress")
        watching = [clients.curl(url) for _ in range(2)]
        wait_for(lambda: metric(service, "hoodypipe_spectators") == 2, 10,
                 "two spectators")
        before = metric(service, "hoodypipe_rejected_requests_total", reason="spectators")
        assert before == 0
        head, body = curl_head_and_body(url)
        assert head.startswith("HTTP/1.1 429 Too Many Requests\r\n"), head
        assert re.search(r"(?mi)^content-type: text/plain; charset=utf-8\r$", head), head
        assert body == b"[ERROR] Too many spectators on this pipe (max 2).\n"
        assert metric(service, "hoodypipe_rejected_requests_total",
                      reason="spectators") == 1
        wait_for(lambda: "rejected GET '/busy-watch': 429 spectators" in service.log(),
                 10, "the request log line")
        # the two admitted ones were not disturbed
        assert all(c.process.poll() is None for c in watching)
        assert metric(service, "hoodypipe_spectators") == 2


def test_the_watched_paths_429_is_a_counted_refusal(
    tmp_path: Path, clients: Clients
) -> None:
    with running_service(tmp_path, "--max-watched", "1") as service:
        clients.curl(service.url("first", "progress"))
        wait_for(lambda: metric(service, "hoodypipe_spectators") == 1, 10, "a spectator")
        head, body = curl_head_and_body(service.url("second", "progress"))
        assert head.startswith("HTTP/1.1 429 Too Many Requests\r\n"), head
        assert body == b"[ERROR] Too many watched pipes (max 1).\n"
        assert metric(service, "hoodypipe_rejected_requests_total",
                      reason="watched_paths") == 1


# -- a path's spectators count while its finished transfer lingers -------------


def send_queues(server_port: int, client_ports: set[int]) -> dict[int, int]:
    """Bytes the server's kernel holds unacknowledged for each client (/proc/net/tcp)."""
    queues: dict[int, int] = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = (int(f.rsplit(":", 1)[1], 16) for f in fields[1:3])
        if local == server_port and remote in client_ports:
            queues[remote] = int(fields[4].split(":")[0], 16)
    return queues


def wait_until_unwritable(server_port: int, stuck: list[socket.socket]) -> None:
    """
    Until the server can no longer write to any of ``stuck``, so their feeds
    are paused and their final events will wait in their queues.

    Whether a feed is paused cannot be seen from outside, so this waits for
    what can and adds a margin measured on the way: first every kernel send
    queue fills and stops growing; then, as filling it took T, progress goes
    on for 3T more.  The server's own transport buffer (64 KiB) pauses the
    feed once it holds about what the kernel queue took, so that is three
    times what it needs at the rate just seen.  The test checks the outcome
    afterwards: a feed that was not paused would end with the transfer.
    """
    ports = {s.getsockname()[1] for s in stuck}
    started = time.monotonic()
    history: list[dict[int, int]] = []

    def full() -> bool:
        history.append(send_queues(server_port, ports))
        recent = history[-3:]
        return (len(recent) == 3 and all(len(q) == len(ports) for q in recent)
                and recent[0] == recent[-1]
                and min(recent[-1].values()) >= 32 * 1024)

    wait_for(full, 20, "the spectators' send queues to fill", interval=0.1)
    filled_in = time.monotonic() - started
    deadline = time.monotonic() + max(1.0, 3 * filled_in)
    wait_for(lambda: time.monotonic() >= deadline, 60, "progress to pile up")


def test_spectators_held_into_the_linger_count_against_the_cap(
    tmp_path: Path, clients: Clients
) -> None:
    with running_service(
        tmp_path, "--max-spectators", "5", "--linger", "60",
        "--progress-interval", "0.002",
    ) as service:
        def state() -> str:
            return str(get_json(service.url("crowd", "status"))["state"])

        stuck = [never_reading_spectator(service.port, "crowd") for _ in range(5)]
        try:
            wait_for(lambda: metric(service, "hoodypipe_spectators") == 5, 10,
                     "five spectators")
            receiver = clients.curl(service.url("crowd"))
            with socket.create_connection(("127.0.0.1", service.port), timeout=10) as s:
                s.sendall(b"PUT /crowd HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n")
                wait_for(lambda: state() == "streaming", 10, "streaming")
                wait_until_unwritable(service.port, stuck)
                s.sendall(b"hello")
                assert receiver.wait(20) == 0
            assert receiver.out.read_bytes() == b"hello"
            wait_for(lambda: state() == "complete", 10, "the transfer to end")
            # lingering now, with its five spectators still open (their done
            # waits behind what they never read): they are counted...
            assert metric(service, "hoodypipe_spectators") == 5
            # ...and a latecomer finds the path full, as during the transfer
            head, body = curl_head_and_body(service.url("crowd", "progress"))
            assert head.startswith("HTTP/1.1 429 Too Many Requests\r\n"), head
            assert body == b"[ERROR] Too many spectators on this pipe (max 5).\n"
            assert metric(service, "hoodypipe_rejected_requests_total",
                          reason="spectators") == 1
        finally:
            for s in stuck:
                s.close()
        # once they are gone, latecomers still get the result while it lingers
        wait_for(lambda: metric(service, "hoodypipe_spectators") == 0, 10,
                 "the stuck spectators to be gone")
        assert state() == "complete"
        late = [clients.curl(service.url("crowd", "progress")) for _ in range(8)]
        for curl in late:
            assert curl.wait(20) == 0
            assert events_of(curl.out) == ["done", "state"]
        assert metric(service, "hoodypipe_spectators") == 0


def events_of(curl_out: Path) -> list[str]:
    return [e.event or "" for e in parse_events(curl_out.read_bytes())[0]]
