"""``hoodypipe watch`` as a user runs it: a real process against a local feed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest_twisted

from tests.kit.cli import cli
from tests.kit.notify import RecordingReceiver, listen_local
from tests.kit.service import free_port
from tests.kit.watchfeed import DROP, Script, Serve, done, progress, state

FEED = (state(1, "streaming"), progress(2, 250), progress(3, 750))


@pytest_twisted.ensureDeferred
async def test_exit_0_and_json_lines(serve: Serve) -> None:
    feed, url = serve([Script((*FEED, done(4)))])
    finished = await cli("watch", url, "--json")
    assert finished.returncode == 0, finished.stderr
    lines = [json.loads(line) for line in finished.stdout.splitlines()]
    kinds = [line["event"] for line in lines]
    assert kinds == ["state", "progress", "progress", "done"]
    assert lines[-1]["data"]["state"] == "complete"
    assert set(lines[0]) == {"event", "data"}


@pytest_twisted.ensureDeferred
async def test_exit_1_on_failure_with_a_plain_summary(serve: Serve) -> None:
    failed = done(4, ok=False, reason="Sender disconnected")
    feed, url = serve([Script((*FEED, failed))])
    finished = await cli("watch", url)
    assert finished.returncode == 1
    assert finished.stdout.splitlines()[-1] == (
        "transfer demo failed: Sender disconnected (1.0 kB in 2.0s)"
    )


@pytest_twisted.ensureDeferred
async def test_exit_2_when_unreachable() -> None:
    url = f"http://127.0.0.1:{free_port()}/api/v1/pipe/demo"
    finished = await cli("watch", url, "--tries", "2", "--retry-delay", "0.1")
    assert finished.returncode == 2
    assert "giving up after 2 tries" in finished.stderr


@pytest_twisted.ensureDeferred
async def test_exit_2_on_a_bad_command_line() -> None:
    assert (await cli("watch")).returncode == 2
    assert (await cli("watch", "ftp://x/y")).returncode == 2
    assert (await cli("watch", "http://h/x", "--tries", "0")).returncode == 2


@pytest_twisted.ensureDeferred
async def test_survives_a_dropped_connection(serve: Serve) -> None:
    feed, url = serve([
        Script(FEED, then=DROP),
        Script((progress(5, 900), done(6))),
    ])
    finished = await cli("watch", url, "--json", "--retry-delay", "0.1")
    assert finished.returncode == 0, finished.stderr
    assert [s.last_event_id for s in feed.seen] == [None, "3"]
    assert "feed interrupted" in finished.stderr


@pytest_twisted.ensureDeferred
async def test_exec_gets_the_done_json(serve: Serve, tmp_path: Path) -> None:
    feed, url = serve([Script((*FEED, done(4, ok=False, reason="Idle timeout")))])
    out = tmp_path / "done.json"
    env = tmp_path / "env.txt"
    show = '"$HOODYPIPE_STATE $HOODYPIPE_OK $HOODYPIPE_NAME"'
    command = f"cat > {out}; echo {show} > {env}"
    finished = await cli("watch", url, "--exec", command)
    assert finished.returncode == 1  # the transfer's outcome, not the command's
    got = json.loads(out.read_text())
    assert got["state"] == "failed" and got["reason"] == "Idle timeout"
    assert got["transferId"] == "tid-1"
    assert env.read_text() == "failed 0 demo\n"


@pytest_twisted.ensureDeferred
async def test_a_failing_exec_is_reported_but_keeps_the_exit_status(
    serve: Serve,
) -> None:
    feed, url = serve([Script((*FEED, done(4)))])
    finished = await cli("watch", url, "--exec", "cat >/dev/null; exit 7")
    assert finished.returncode == 0
    assert "--exec command exited with status 7" in finished.stderr


@pytest_twisted.ensureDeferred
async def test_pagerduty_from_the_client(serve: Serve) -> None:
    import time

    feed, url = serve([Script((*FEED, done(4, ok=False, reason="Idle timeout")))])
    receiver = RecordingReceiver([202], time.monotonic)
    port, number = listen_local(receiver)
    try:
        finished = await cli(
            "watch", url, "--pagerduty-routing-key", "K3Y",
            "--pagerduty-url", f"http://127.0.0.1:{number}/v2/enqueue",
        )
    finally:
        await port.stopListening()
    assert finished.returncode == 1, finished.stderr
    (sent,) = receiver.received
    assert sent.headers["content-type"] == "application/json"
    event = sent.json()
    assert event["routing_key"] == "K3Y"
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == "tid-1"
    payload = event["payload"]
    assert {"summary", "source", "severity"} <= payload.keys()
    assert payload["severity"] == "error"
    assert payload["summary"] == (
        "hoodypipe: transfer demo failed: Idle timeout (1.0 kB in 2.0s)"
    )
    assert payload["source"] == url.split("/api/")[0]
    assert event["links"][0]["href"] == url + "?progress"


@pytest_twisted.ensureDeferred
async def test_a_terminal_gets_a_live_line(serve: Serve) -> None:
    feed, url = serve([Script((*FEED, done(4)))])
    finished = await cli("watch", url, tty=True)
    assert finished.returncode == 0, finished.stderr
    screen = finished.stdout
    assert "\r\x1b[Kdemo: 250 B / 1.0 kB   25.0%" in screen
    assert "\r\x1b[Kdemo: 750 B / 1.0 kB   75.0%" in screen
    assert screen.rstrip().endswith("transfer demo complete, 1.0 kB in 2.0s")


