"""
One log line per transfer and per rejected request, with named fields.

Lines go through ``twisted.logger``, so the fields survive as JSON keys when
the log is JSON, and read as a sentence when it is text. Nothing is logged
per chunk. Two observer factories for ``twistd --logger`` suit journald,
which timestamps lines itself:

- ``--logger=hoodypipe.ops.translog.text_observer``: one text line per event,
  prefixed ``<N>`` with the syslog priority, which journald takes as the
  entry's priority (``journalctl -p warning`` then works);
- ``--logger=hoodypipe.ops.translog.json_observer``: one JSON object per line.
"""

from __future__ import annotations

import sys

from twisted.logger import (
    FileLogObserver,
    LogEvent,
    Logger,
    LogLevel,
    eventAsJSON,
    eventAsText,
)
from zope.interface import implementer

from hoodypipe.core.events import ITransferObserver, PipeStatus, TransferResult

MAX_LOGGED_PATH = 256

_PRIORITY = {
    LogLevel.debug: 7,
    LogLevel.info: 6,
    LogLevel.warn: 4,
    LogLevel.error: 3,
    LogLevel.critical: 2,
}


@implementer(ITransferObserver)
class TransferLog:
    """Logs how each transfer ended, once, when it ends."""

    log = Logger()

    def pipe_changed(self, status: PipeStatus) -> None:
        """Only the end of a transfer is logged."""

    def transfer_done(self, result: TransferResult) -> None:
        self.log.info(
            "transfer {outcome}: pipe {name!r}, {bytes} bytes in {duration:.3f}s, "
            "{receivers} receiver(s){because}",
            outcome=result.state,
            name=result.name,
            bytes=result.bytes,
            duration=result.duration_sec,
            receivers=result.receivers,
            reason=result.reason,
            because="" if result.reason is None else f": {result.reason}",
            transfer_id=result.transfer_id,
            total_bytes=result.total_bytes,
        )


class RequestLog:
    """Logs requests the server refused, one line each."""

    log = Logger()

    def rejected(
        self, method: str, path: str, status: int, reason: str | None
    ) -> None:
        """``path`` is the raw request path; it is cut short and quoted."""
        if len(path) > MAX_LOGGED_PATH:
            path = path[:MAX_LOGGED_PATH] + "..."
        self.log.info(
            "rejected {method} {path!r}: {status} {reason}",
            method=method[:16],
            path=path,
            status=status,
            reason=reason,
        )


def _journal_line(event: LogEvent) -> str | None:
    text = eventAsText(event, includeTimestamp=False)
    if not text:
        return None
    priority = _PRIORITY.get(event.get("log_level", LogLevel.info), 6)
    return f"<{priority}>{text}\n"


def text_observer() -> FileLogObserver:
    """Text lines for journald on stdout: ``<6>[namespace#info] message``."""
    return FileLogObserver(sys.stdout, _journal_line)


def _json_line(event: LogEvent) -> str:
    return eventAsJSON(event) + "\n"


def json_observer() -> FileLogObserver:
    """One JSON object per line on stdout (twisted.logger's event encoding)."""
    return FileLogObserver(sys.stdout, _json_line)
