"""What the webhook and the PagerDuty event say, and which transfers get them."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from hoodypipe.common.humanize import human_bytes, human_duration, human_rate
from hoodypipe.common.pagerduty import (
    DEDUP_LIMIT,
    SUMMARY_LIMIT,
    dedup_key,
    iso8601,
    pagerduty_event,
    summary,
)
from hoodypipe.common.wire import done_event
from hoodypipe.core.events import TransferResult
from hoodypipe.notify.webhook import progress_url, wants_notification, webhook_body
from hoodypipe.settings import Settings

COMPLETE = TransferResult(
    name="backups/db.tar", transfer_id="3f2a", ok=True, bytes=7_600_000_000,
    total_bytes=7_600_000_000, started_at=1000.0, ended_at=1000.0 + 8 * 3600 + 120,
    receivers=1,
)
FAILED = TransferResult(
    name="logs", transfer_id="9c1d", ok=False, bytes=1_200_000, total_bytes=None,
    started_at=50.0, ended_at=234.0, receivers=2, reason="Sender disconnected",
)

#: Events API v2, "Send an Alert Event": the required fields of a trigger.
REQUIRED = {"routing_key", "event_action", "payload"}
REQUIRED_PAYLOAD = {"summary", "source", "severity"}


def test_webhook_body_is_the_done_event_plus_where() -> None:
    body = webhook_body(COMPLETE, "https://pipe.example.com/")
    done = done_event(COMPLETE)
    assert {k: body[k] for k in done} == done
    assert body["name"] == "backups/db.tar"
    assert body["server"] == "https://pipe.example.com/"
    assert body["progressUrl"] == (
        "https://pipe.example.com/api/v1/pipe/backups/db.tar?progress"
    )
    assert body["state"] == "complete" and body["ok"] is True
    assert body["transferId"] == "3f2a"
    json.dumps(body)


def test_webhook_body_without_public_url() -> None:
    body = webhook_body(FAILED, None)
    assert body["server"] is None
    assert body["progressUrl"] is None
    assert body["state"] == "failed" and body["ok"] is False
    assert body["reason"] == "Sender disconnected"


def test_progress_url_keeps_the_names_own_percent_encoding() -> None:
    # Pipe names are the raw, percent-encoded path the server saw: quoting
    # them again would point at another pipe (a%2520b instead of a%20b).
    assert progress_url("http://h:8080", "a%20b/caf%C3%A9") == (
        "http://h:8080/api/v1/pipe/a%20b/caf%C3%A9?progress"
    )
    assert progress_url("http://h:8080", "a b/c?d#e") == (
        "http://h:8080/api/v1/pipe/a%20b/c%3Fd%23e?progress"
    )
    assert progress_url(None, "x") is None


@pytest.mark.parametrize(
    ("settings", "result", "wanted"),
    [
        (Settings(), COMPLETE, True),
        (Settings(), FAILED, True),
        (Settings(on_done_failed_only=True), COMPLETE, False),
        (Settings(on_done_failed_only=True), FAILED, True),
        (Settings(on_done_match="backups/*"), COMPLETE, True),
        (Settings(on_done_match="backups/*"), FAILED, False),
        (Settings(on_done_match="BACKUPS/*"), COMPLETE, False),
        (Settings(on_done_match="log?"), FAILED, True),
        (Settings(on_done_match="log?", on_done_failed_only=True), FAILED, True),
        (
            Settings(on_done_match="backups/*", on_done_failed_only=True),
            COMPLETE,
            False,
        ),
    ],
)
def test_filters(settings: Settings, result: TransferResult, wanted: bool) -> None:
    assert wants_notification(settings, result) is wanted


def event_for(result: TransferResult, public: str | None = "https://pipe.example.com"):  # type: ignore[no-untyped-def]
    return pagerduty_event(
        routing_key="R0UT1NGKEY",
        name=result.name,
        done=done_event(result),
        source=public or "relay-1.internal",
        timestamp=1_700_000_000.25,
        progress_url=progress_url(public, result.name),
        client_url=public,
    )


def test_pagerduty_complete_event_has_every_required_field() -> None:
    event = event_for(COMPLETE)
    assert REQUIRED <= event.keys()
    assert REQUIRED_PAYLOAD <= event["payload"].keys()
    assert event["routing_key"] == "R0UT1NGKEY"
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == "3f2a"
    payload = event["payload"]
    assert payload["severity"] == "info"
    assert payload["summary"] == (
        "hoodypipe: transfer backups/db.tar complete, 7.6 GB in 8h 2m"
    )
    assert payload["source"] == "https://pipe.example.com"
    assert payload["component"] == "hoodypipe"
    assert payload["group"] == "backups/db.tar"
    assert payload["class"] == "transfer complete"
    assert payload["timestamp"] == "2023-11-14T22:13:20.250+00:00"
    datetime.fromisoformat(payload["timestamp"])
    details = payload["custom_details"]
    assert details["bytes"] == 7_600_000_000
    assert details["durationSec"] == 8 * 3600 + 120
    assert details["name"] == "backups/db.tar"
    assert details["progressUrl"].endswith("/api/v1/pipe/backups/db.tar?progress")
    assert event["links"] == [
        {
            "href": "https://pipe.example.com/api/v1/pipe/backups/db.tar?progress",
            "text": "Live progress of backups/db.tar",
        }
    ]
    assert event["client"] == "hoodypipe"
    assert event["client_url"] == "https://pipe.example.com"
    json.dumps(event)


def test_pagerduty_failed_event() -> None:
    event = event_for(FAILED, public=None)
    payload = event["payload"]
    assert payload["severity"] == "error"
    assert payload["class"] == "transfer failed"
    assert payload["summary"] == (
        "hoodypipe: transfer logs failed: Sender disconnected (1.2 MB in 3m 4s)"
    )
    assert payload["source"] == "relay-1.internal"
    assert event["dedup_key"] == "9c1d"
    assert "links" not in event and "client_url" not in event
    assert payload["custom_details"]["reason"] == "Sender disconnected"


def test_pagerduty_limits_are_respected() -> None:
    name = "n" * 1024
    long = TransferResult(
        name=name, transfer_id="x" * 400, ok=False, bytes=0, total_bytes=None,
        started_at=0, ended_at=1, receivers=0, reason="r" * 2000,
    )
    event = event_for(long)
    assert len(event["payload"]["summary"]) <= SUMMARY_LIMIT
    assert len(event["dedup_key"]) <= DEDUP_LIMIT
    assert len(event["payload"]["group"]) <= 255


def test_dedup_key_without_a_transfer_id_is_stable() -> None:
    done = {"state": "complete", "ok": True, "bytes": 5, "endedAt": 12.5}
    assert dedup_key("a", done) == dedup_key("a", dict(done))
    assert dedup_key("a", done) != dedup_key("b", done)
    assert dedup_key("a", done).startswith("hoodypipe-")


def test_summary_from_a_sparse_done() -> None:
    assert summary("p", {"state": "failed"}) == (
        "hoodypipe: transfer p failed: unknown reason (? in ?)"
    )


def test_iso8601() -> None:
    assert iso8601(0) == "1970-01-01T00:00:00.000+00:00"


@pytest.mark.parametrize(
    ("count", "text"),
    [(0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (7_600_000_000, "7.6 GB"),
     (None, "?")],
)
def test_human_bytes(count: int | None, text: str) -> None:
    assert human_bytes(count) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.42, "0.4s"), (12, "12s"), (184, "3m 4s"), (8 * 3600 + 120, "8h 2m"),
     (90000, "1d 1h"), (None, "?")],
)
def test_human_duration(seconds: float | None, text: str) -> None:
    assert human_duration(seconds) == text


def test_human_rate() -> None:
    assert human_rate(263_000_000) == "263.0 MB/s"
