"""
Spectator caps against the real server (``twistd hoodypipe``), from outside:
the refusal is worded and counted like every other refusal, and a path's
spectators count against its cap whatever state the path is in.

The basic per-path and default caps are in ``test_feeds.py``.
"""

from __future__ import annotations

import re
import subprocess
import urllib.request
from pathlib import Path

from tests.kit.clients import Clients
from tests.kit.service import Service, running_service
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
