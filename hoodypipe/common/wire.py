"""
The JSON bodies of the spectator events (``state``, ``progress``, ``done``)
and of the ``?status`` snapshot, built from the core's frozen values.

Both our field names and the ones the Hoody pipe kit's clients read are
produced here, in one place, so the SSE feed, the ``?status`` snapshot, the
dashboard and the outbound notifications can never drift apart.
"""

from __future__ import annotations

from hoodypipe.common.jsonbody import JSONObject
from hoodypipe.core.events import IDLE, PipeStatus, TransferResult

__all__ = ["JSONObject", "done_event", "progress_event", "snapshot", "state_event"]


def _round(value: float, places: int = 3) -> float:
    return round(value, places)


def state_event(
    status: PipeStatus, last_transfer: JSONObject | None = None
) -> JSONObject:
    """The ``state`` event: who is connected and which state the pipe is in."""
    body: JSONObject = {
        "state": status.state,
        "receivers": status.receivers,
        "hasSender": status.has_sender,
        "activeReceivers": status.receivers,
        "totalReceivers": status.total_receivers,
        "transferId": status.transfer_id,
    }
    if status.state == IDLE:
        body["lastTransfer"] = last_transfer
    return body


def progress_event(status: PipeStatus, now: float, speed_bps: float) -> JSONObject:
    """The ``progress`` event; ``speed_bps`` is the current rate in bytes/s."""
    elapsed = 0.0 if status.started_at is None else max(0.0, now - status.started_at)
    total = status.total_bytes
    percent: float | None = None
    eta: float | None = None
    if total:
        percent = _round(min(100.0, 100.0 * status.bytes / total), 2)
        if speed_bps > 0:
            eta = _round(max(0.0, (total - status.bytes) / speed_bps), 1)
    elif total == 0:
        percent = 100.0
        eta = 0.0
    return {
        "bytes": status.bytes,
        "totalBytes": total,
        "percent": percent,
        "mbps": _round(speed_bps / 1e6),
        "etaSec": eta,
        "elapsedSec": _round(elapsed, 1),
        "receivers": status.receivers,
        "bytesTransferred": status.bytes,
        "speed": int(speed_bps),
        "eta": eta,
        "elapsed": _round(elapsed, 1),
        "activeReceivers": status.receivers,
    }


def done_event(result: TransferResult) -> JSONObject:
    """
    The ``done`` event: how one transfer ended, sent exactly once.

    ``durationSec`` is seconds to the millisecond; the kit's ``duration`` is
    the same time in whole milliseconds (its CLI prints ``in ${duration}ms``),
    rounded to the nearest from ``durationSec`` so the two always agree:
    ``duration == round(durationSec * 1000)``.
    """
    duration = result.duration_sec
    avg = result.bytes / duration if duration > 0 else 0.0
    seconds = _round(duration)
    return {
        "state": result.state,
        "ok": result.ok,
        "bytes": result.bytes,
        "totalBytes": result.total_bytes,
        "durationSec": seconds,
        "mbps": _round(avg / 1e6),
        "reason": result.reason,
        "receivers": result.receivers,
        "bytesTransferred": result.bytes,
        "duration": round(seconds * 1000),
        "avgSpeed": int(avg),
        "transferId": result.transfer_id,
        "sha256": result.sha256,
        "endedAt": _round(result.ended_at),
    }


def snapshot(
    status: PipeStatus,
    now: float,
    speed_bps: float,
    last_transfer: JSONObject | None = None,
) -> JSONObject:
    """The ``?status`` body: the state and progress fields in one object."""
    progress = progress_event(status, now, speed_bps)
    return {
        "state": status.state,
        "hasSender": status.has_sender,
        "receivers": status.receivers,
        "activeReceivers": status.receivers,
        "totalReceivers": status.total_receivers,
        "bytes": status.bytes,
        "bytesTransferred": status.bytes,
        "totalBytes": status.total_bytes,
        "percent": progress["percent"],
        "mbps": progress["mbps"],
        "speed": progress["speed"],
        "etaSec": progress["etaSec"],
        "eta": progress["eta"],
        "elapsedSec": progress["elapsedSec"],
        "elapsed": progress["elapsed"],
        "reason": status.reason,
        "transferId": status.transfer_id,
        "sha256": None,
        "lastTransfer": last_transfer,
    }
