"""
Memory given back after a peak (issue 8 finding 7): after a burst of
concurrent transfers the server's RSS falls back near where it started,
instead of staying at the peak for good.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.kit.clients import Clients, nothing_registered, wait_until_waiting
from tests.kit.service import running_service
from tests.kit.waiting import wait_for

MB = 1_000_000
TRANSFERS = 48


def test_rss_falls_back_after_a_burst_of_concurrent_transfers(
    tmp_path: Path, clients: Clients,
) -> None:
    payload = tmp_path / "p.bin"
    payload.write_bytes(os.urandom(20 * MB))
    with running_service(tmp_path) as service:
        # First-request costs out of the baseline: one small transfer.
        receiver = clients.receive(service.url("warm"))
        wait_until_waiting(service.base, "warm")
        assert clients.curl("--data-binary", "x", service.url("warm")).wait(30) == 0
        assert receiver.wait(30) == 0
        baseline = service.rss_bytes()

        receivers = [clients.receive(service.url(f"burst{i}")) for i in range(TRANSFERS)]
        wait_until_waiting(service.base, "burst", TRANSFERS)
        senders = [clients.send_file(service.url(f"burst{i}"), payload)
                   for i in range(TRANSFERS)]
        peak = baseline
        while any(c.process.poll() is None for c in senders + receivers):
            peak = max(peak, service.rss_bytes())
            time.sleep(0.05)  # sampling the peak, not waiting for anything
        for curl in senders + receivers:
            assert curl.wait(60) == 0
        assert all(r.out.stat().st_size == payload.stat().st_size for r in receivers)
        nothing_registered(service.base)
        assert peak - baseline > 15 * MB, "the burst must make a peak for this test to mean much"

        wait_for(lambda: service.rss_bytes() < baseline + 8 * MB, 15,
                 f"RSS back near {baseline / MB:.0f} MB (peak {peak / MB:.0f} MB)",
                 interval=0.2)
