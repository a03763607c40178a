"""The per-transfer and per-rejection log lines, and the journald observers."""

from __future__ import annotations

import io
import json
import sys

import pytest
from twisted.logger import Logger, LogLevel, capturedLogs, formatEvent
from zope.interface.verify import verifyObject

from hoodypipe.core.events import ITransferObserver, PipeStatus, TransferResult
from hoodypipe.ops import translog
from hoodypipe.ops.translog import RequestLog, TransferLog


def test_one_line_per_transfer_with_named_fields() -> None:
    log = TransferLog()
    assert verifyObject(ITransferObserver, log)
    with capturedLogs() as events:
        log.pipe_changed(PipeStatus(name="x", state="streaming"))
        log.transfer_done(TransferResult(
            name="reports/q3", transfer_id="abc", ok=True, bytes=2048,
            total_bytes=2048, started_at=5.0, ended_at=7.5, receivers=2))
        log.transfer_done(TransferResult(
            name="x", transfer_id="def", ok=False, bytes=10, total_bytes=None,
            started_at=1.0, ended_at=1.25, receivers=1,
            reason="Sender disconnected"))
    assert len(events) == 2
    done, failed = events
    assert done["log_level"] == LogLevel.info
    assert {k: done[k] for k in ("name", "bytes", "duration", "outcome", "reason",
                                 "receivers", "transfer_id")} == {
        "name": "reports/q3", "bytes": 2048, "duration": 2.5, "outcome": "complete",
        "reason": None, "receivers": 2, "transfer_id": "abc"}
    assert formatEvent(done) == (
        "transfer complete: pipe 'reports/q3', 2048 bytes in 2.500s, 2 receiver(s)")
    assert failed["outcome"] == "failed" and failed["reason"] == "Sender disconnected"
    assert formatEvent(failed) == (
        "transfer failed: pipe 'x', 10 bytes in 0.250s, 1 receiver(s): "
        "Sender disconnected")


def test_rejected_request_line_is_bounded_and_quoted() -> None:
    with capturedLogs() as events:
        RequestLog().rejected("DELETE", "/a b", 405, "method")
        RequestLog().rejected("GET", "/" + "x" * 5000 + "\n", 414, "too_long")
    first, second = events
    assert formatEvent(first) == "rejected DELETE '/a b': 405 method"
    assert (first["method"], first["path"], first["status"], first["reason"]) == (
        "DELETE", "/a b", 405, "method")
    assert len(second["path"]) == translog.MAX_LOGGED_PATH + 3
    assert "\n" not in formatEvent(second)


def test_text_observer_writes_journald_priority_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    observer = translog.text_observer()
    log = Logger(namespace="hoodypipe.test", observer=observer)
    log.info("pipe {name!r} done", name="a")
    log.warn("careful")
    log.error("broken")
    assert out.getvalue().splitlines() == [
        "<6>[hoodypipe.test#info] pipe 'a' done",
        "<4>[hoodypipe.test#warn] careful",
        "<3>[hoodypipe.test#error] broken",
    ]


def test_json_observer_writes_one_object_per_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    observer = translog.json_observer()
    log = Logger(namespace="hoodypipe.test", observer=observer)
    log.info("transfer {outcome}", outcome="complete", bytes=5)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["outcome"] == "complete" and event["bytes"] == 5
    assert event["log_namespace"] == "hoodypipe.test"
