"""
Notifications from the real server (``twistd hoodypipe``) to a real local
receiver: transfers run with curl, the hooks land on a Twisted Site that this
test runs on 127.0.0.1 and that records what it gets.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from statistics import median

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

from tests.kit.notify import HANG, Answer, Received, Started
from tests.kit.service import running_service
from tests.kit.transfers import send_file, send_then_vanish
from tests.kit.waiting import eventually

PUBLIC = "http://pipe.example:8080"


def only(received: list[Received], transfer_id: str) -> list[Received]:
    return [r for r in received if r.json().get("transferId") == transfer_id
            or r.json().get("dedup_key") == transfer_id]


@pytest_twisted.ensureDeferred
async def test_each_transfer_delivers_exactly_one_webhook_and_alert(
    receiver_for: Callable[[list[Answer]], Started], tmp_path: Path
) -> None:
    hooks, hook_url = receiver_for([200])
    pager, pager_url = receiver_for([202])
    payload = tmp_path / "payload"
    payload.write_bytes(b"p" * 100_000)
    with running_service(
        tmp_path, "--on-done", hook_url, "--public-url", PUBLIC,
        "--pagerduty-routing-key", "R0UT1NG", "--pagerduty-url", pager_url,
    ) as service:
        await deferToThread(send_file, service, "jobs/ok", payload)
        await eventually(lambda: len(hooks.received) == 1 and len(pager.received) == 1)
        await deferToThread(send_then_vanish, service, "jobs/broken")
        await eventually(lambda: len(hooks.received) == 2 and len(pager.received) == 2)
        await deferLater(reactor, 1.0)  # nothing more may come
        log = service.log()
    assert len(hooks.received) == 2 and len(pager.received) == 2, log

    complete, failed = (r.json() for r in hooks.received)
    assert hooks.received[0].headers["content-type"] == "application/json"
    assert complete["name"] == "jobs/ok"
    assert complete["state"] == "complete" and complete["ok"] is True
    assert complete["bytes"] == complete["bytesTransferred"] == 100_000
    assert complete["reason"] is None
    assert complete["server"] == PUBLIC
    assert complete["progressUrl"] == f"{PUBLIC}/api/v1/pipe/jobs/ok?progress"
    for key in ("durationSec", "mbps", "duration", "avgSpeed", "transferId", "sha256"):
        assert key in complete
    assert failed["name"] == "jobs/broken"
    assert failed["state"] == "failed" and failed["ok"] is False
    assert failed["reason"] == "Sender disconnected"
    assert 0 < failed["bytes"] < 10_000_000
    assert failed["transferId"] != complete["transferId"]

    info, error = (r.json() for r in pager.received)
    for event, done, severity in ((info, complete, "info"), (error, failed, "error")):
        assert pager.received[0].headers["content-type"] == "application/json"
        assert event["routing_key"] == "R0UT1NG"
        assert event["event_action"] == "trigger"
        assert event["dedup_key"] == done["transferId"]
        payload_fields = event["payload"]
        assert payload_fields["summary"] and len(payload_fields["summary"]) <= 1024
        assert payload_fields["source"] == PUBLIC
        assert payload_fields["severity"] == severity
        assert payload_fields["component"] == "hoodypipe"
        assert payload_fields["timestamp"].endswith("+00:00")
        assert payload_fields["custom_details"]["transferId"] == done["transferId"]
        assert event["links"][0]["href"] == done["progressUrl"]
        assert event["client"] == "hoodypipe"
    assert info["payload"]["summary"].startswith("hoodypipe: transfer jobs/ok complete")
    assert error["payload"]["summary"].startswith(
        "hoodypipe: transfer jobs/broken failed: Sender disconnected"
    )


@pytest_twisted.ensureDeferred
async def test_filters_on_the_real_server(
    receiver_for: Callable[[list[Answer]], Started], tmp_path: Path
) -> None:
    hooks, hook_url = receiver_for([200])
    payload = tmp_path / "payload"
    payload.write_bytes(b"p" * 1000)
    with running_service(
        tmp_path, "--on-done", hook_url, "--on-done-failed-only",
        "--on-done-match", "watched/*",
    ) as service:
        await deferToThread(send_file, service, "watched/ok", payload)
        await deferToThread(send_then_vanish, service, "other/broken")
        await deferToThread(send_then_vanish, service, "watched/broken")
        await eventually(lambda: len(hooks.received) == 1)
        await deferLater(reactor, 0.5)
    (only_one,) = hooks.received
    body = only_one.json()
    assert body["name"] == "watched/broken" and body["server"] is None
    assert body["progressUrl"] is None


@pytest_twisted.ensureDeferred
async def test_500_twice_then_202_is_three_tries(
    receiver_for: Callable[[list[Answer]], Started], tmp_path: Path
) -> None:
    hooks, hook_url = receiver_for([500, 500, 202, 200])
    payload = tmp_path / "payload"
    payload.write_bytes(b"p" * 1000)
    options = ("--on-done", hook_url, "--hook-retries", "5")
    with running_service(tmp_path, *options) as service:
        await deferToThread(send_file, service, "retried", payload)
        await eventually(lambda: len(hooks.received) == 3, timeout=15)
        await deferLater(reactor, 1.5)  # a 4th try would have come by now
        log = service.log()
    assert len(hooks.received) == 3
    first, second, third = hooks.received
    assert first.body == second.body == third.body
    assert 0.8 <= second.at - first.at <= 3.0  # backoff: 1 s, then 2 s
    assert 1.8 <= third.at - second.at <= 4.0
    assert log.count("failed on try") == 2
    assert "HTTP 500" in log


@pytest_twisted.ensureDeferred
async def test_a_hanging_hook_is_cut_and_never_slows_a_transfer(
    receiver_for: Callable[[list[Answer]], Started], tmp_path: Path
) -> None:
    size = 32 * 1024 * 1024
    payload = tmp_path / "payload"
    payload.write_bytes(b"\0" * size)

    with running_service(tmp_path) as plain:
        baseline = [await deferToThread(send_file, plain, f"b{i}", payload)
                    for i in range(3)]

    hooks, hook_url = receiver_for([HANG])
    with running_service(
        tmp_path, "--on-done", hook_url, "--hook-timeout", "3", "--hook-retries", "1"
    ) as hooked:
        first = await deferToThread(send_file, hooked, "h0", payload)
        await eventually(lambda: len(hooks.received) == 1)
        # While that hook hangs, more transfers (each adding a hanging hook).
        during = [await deferToThread(send_file, hooked, f"h{i}", payload)
                  for i in range(1, 3)]
        assert len(hooks.hanging) >= 1 and not hooks.hang_ended
        await eventually(lambda: len(hooks.hang_ended) == len(hooks.received), 10)
        log = hooked.log()
    cut_after = hooks.hang_ended[0] - hooks.received[0].at
    assert 2.5 <= cut_after <= 5.0, cut_after
    assert "timed out" in log
    with_hook = median([first, *during])
    plain_time = median(baseline)
    assert with_hook <= max(2 * plain_time, plain_time + 0.5), (baseline, first, during)
