"""
What the transfer state tells the rest of the server.

The byte path keeps plain counters; everything that watches a pipe
(spectator feeds, metrics, notifications, logs) reads these frozen values
instead of touching the pipe, so none of them can slow a transfer.
"""

from __future__ import annotations

import attrs
from zope.interface import Interface

IDLE = "idle"
WAITING = "waiting"
STREAMING = "streaming"
COMPLETE = "complete"
FAILED = "failed"


@attrs.frozen
class PipeStatus:
    """One pipe as seen at one moment (times are reactor seconds)."""

    name: str
    state: str
    has_sender: bool = False
    receivers: int = 0
    total_receivers: int = 0
    bytes: int = 0
    total_bytes: int | None = None
    started_at: float | None = None
    ended_at: float | None = None
    reason: str | None = None
    transfer_id: str | None = None


@attrs.frozen
class TransferResult:
    """How one transfer ended; reported exactly once per transfer."""

    name: str
    transfer_id: str
    ok: bool
    bytes: int
    total_bytes: int | None
    started_at: float
    ended_at: float
    receivers: int
    reason: str | None = None
    sha256: str | None = None

    @property
    def state(self) -> str:
        return COMPLETE if self.ok else FAILED

    @property
    def duration_sec(self) -> float:
        return max(0.0, self.ended_at - self.started_at)


class ITransferObserver(Interface):
    """Told about transitions; must return quickly and never raise."""

    def pipe_changed(status: PipeStatus) -> None:
        """A pipe moved to another state or its parties changed."""

    def transfer_done(result: TransferResult) -> None:
        """A transfer ended (complete or failed); called once per transfer."""
