"""
PagerDuty Events API v2: one ``trigger`` event per finished transfer.

Built from the ``done`` JSON alone (plus the pipe name and where it ran), so
the server's notifier and ``hoodypipe watch`` on someone's laptop send the
very same event, and PagerDuty folds them into one alert through the
``dedup_key`` (the transfer id).

Field rules from the Events API v2 reference: ``routing_key``,
``event_action`` and ``payload.summary`` / ``source`` / ``severity`` are
required; ``summary`` is at most 1024 characters and ``dedup_key`` at most
255; ``severity`` is one of critical, error, warning, info; ``timestamp`` is
ISO 8601. The API answers ``202 Accepted``; 429 and 5xx are to be retried.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from hoodypipe.common.humanize import human_bytes, human_duration
from hoodypipe.common.jsonbody import JSONObject

#: Where Events API v2 events go unless the operator (or the user of
#: ``hoodypipe watch``) names another endpoint.
EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"

SUMMARY_LIMIT = 1024
DEDUP_LIMIT = 255
FIELD_LIMIT = 255


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def iso8601(epoch_seconds: float) -> str:
    """``0`` -> ``"1970-01-01T00:00:00.000+00:00"``."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.isoformat(timespec="milliseconds")


def _number(done: JSONObject, *keys: str) -> float | None:
    for key in keys:
        value = done.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def duration_seconds(done: JSONObject) -> float | None:
    """
    How long the transfer took, in seconds: our ``durationSec``, else the
    kit's ``duration`` (integer milliseconds) from a server that only sends
    that one.
    """
    seconds = _number(done, "durationSec")
    if seconds is not None:
        return seconds
    millis = _number(done, "duration")
    return None if millis is None else millis / 1000


def is_complete(done: JSONObject) -> bool:
    ok = done.get("ok")
    if isinstance(ok, bool):
        return ok
    return done.get("state") == "complete"


def summary(name: str, done: JSONObject) -> str:
    """``hoodypipe: transfer backup complete, 7.6 GB in 8h 2m`` or
    ``hoodypipe: transfer backup failed: Sender disconnected (1.2 GB in 3m 4s)``."""
    moved = human_bytes(_number(done, "bytes", "bytesTransferred"))
    took = human_duration(duration_seconds(done))
    if is_complete(done):
        text = f"hoodypipe: transfer {name} complete, {moved} in {took}"
    else:
        reason = done.get("reason") or "unknown reason"
        text = f"hoodypipe: transfer {name} failed: {reason} ({moved} in {took})"
    return _clip(text, SUMMARY_LIMIT)


def dedup_key(name: str, done: JSONObject) -> str:
    """The transfer id; a stable digest of what we know when a server
    did not send one."""
    transfer_id = done.get("transferId")
    if isinstance(transfer_id, str) and transfer_id:
        return _clip(transfer_id, DEDUP_LIMIT)
    seed = f"{name}\0{done.get('endedAt')}\0{done.get('bytes')}"
    return "hoodypipe-" + hashlib.sha256(seed.encode("utf-8")).hexdigest()[:32]


def pagerduty_event(
    *,
    routing_key: str,
    name: str,
    done: JSONObject,
    source: str,
    timestamp: float,
    progress_url: str | None = None,
    client_url: str | None = None,
) -> JSONObject:
    """The whole request body of one ``trigger`` event."""
    complete = is_complete(done)
    details: dict[str, Any] = {"name": name, **done, "progressUrl": progress_url}
    event: JSONObject = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key(name, done),
        "payload": {
            "summary": summary(name, done),
            "source": _clip(source, FIELD_LIMIT) or "hoodypipe",
            "severity": "info" if complete else "error",
            "timestamp": iso8601(timestamp),
            "component": "hoodypipe",
            "group": _clip(name, FIELD_LIMIT),
            "class": "transfer complete" if complete else "transfer failed",
            "custom_details": details,
        },
        "client": "hoodypipe",
    }
    if client_url:
        event["client_url"] = client_url
    if progress_url:
        text = _clip(f"Live progress of {name}", FIELD_LIMIT)
        event["links"] = [{"href": progress_url, "text": text}]
    return event
