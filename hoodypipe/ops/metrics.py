"""
Prometheus metrics for one server, served at ``/api/v1/pipe/metrics``.

Counters move once per transfer (``Metrics`` is a transfer observer) or once
per rejected request; the gauges are read from the registry and the spectator
feeds when scraped, so nothing here runs per chunk. Each server gets its own
``CollectorRegistry``: the process-global one would mix servers built in one
test process and carries whatever other libraries register.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
)
from prometheus_client.exposition import generate_latest
from twisted.logger import Logger
from zope.interface import implementer

import hoodypipe
from hoodypipe.core.events import (
    COMPLETE,
    FAILED,
    ITransferObserver,
    PipeStatus,
    TransferResult,
)

# Transfers last from milliseconds to a working day.
DURATION_BUCKETS = (
    0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 8 * 3600.0,
    float("inf"),
)

# The reasons the web layer is expected to report; others are still counted
# if they look like a short code, anything else becomes "other", so a client
# can never grow the number of time series.
REJECTION_REASONS = ("bad_name", "method", "busy", "capacity", "wait_timeout",
                     "draining", "spectators", "watched_paths")
_REASON_CODE = re.compile(r"[a-z][a-z0-9_]{0,31}\Z")
_MAX_REASONS = 64


class PipeCounts(Protocol):
    """The part of ``PipeRegistry`` read at scrape time."""

    draining: bool

    def active_count(self) -> int: ...

    def waiting_count(self) -> int: ...

    def party_count(self) -> int: ...


@implementer(ITransferObserver)
class Metrics:
    """The server's metrics; ``render()`` is the scrape body."""

    log = Logger()
    #: What ``generate_latest`` writes (spelled out: older prometheus_client
    #: releases have no constant for it, newer ones name 1.0.0 "latest").
    content_type = "text/plain; version=0.0.4; charset=utf-8"

    def __init__(
        self,
        registry: PipeCounts,
        spectators: Callable[[], int] = lambda: 0,
        process: bool = True,
    ) -> None:
        self.collectors = CollectorRegistry()
        self._pipes = registry
        self._spectators = spectators
        self._transfers = Counter(
            "hoodypipe_transfers",
            "Transfers ended, by outcome (complete or failed).",
            ["outcome"],
            registry=self.collectors,
        )
        self._bytes = Counter(
            "hoodypipe_relayed_bytes",
            "Bytes relayed from senders, counted once whatever the number of "
            "receivers, including those of failed transfers.",
            registry=self.collectors,
        )
        self._duration = Histogram(
            "hoodypipe_transfer_duration_seconds",
            "Time from the start of streaming to the end of a transfer.",
            ["outcome"],
            buckets=DURATION_BUCKETS,
            registry=self.collectors,
        )
        self._rejected = Counter(
            "hoodypipe_rejected_requests",
            "Requests answered with an error instead of joining a pipe, by reason.",
            ["reason"],
            registry=self.collectors,
        )
        for outcome in (COMPLETE, FAILED):
            self._transfers.labels(outcome)
            self._duration.labels(outcome)
        for reason in REJECTION_REASONS:
            self._rejected.labels(reason)
        self._reasons = set(REJECTION_REASONS)
        self._gauge("hoodypipe_waiting_pipes",
                    "Pipes waiting for their other side.", registry.waiting_count)
        self._gauge("hoodypipe_active_pipes",
                    "Pipes streaming now.", registry.active_count)
        self._gauge("hoodypipe_parties",
                    "Senders and receivers held by waiting and streaming pipes "
                    "(the --max-parties cap).", registry.party_count)
        self._gauge("hoodypipe_spectators",
                    "Spectator connections open now.", self._spectator_count)
        self._gauge("hoodypipe_draining",
                    "1 while the server drains before stopping.",
                    lambda: 1 if self._pipes.draining else 0)
        Info("hoodypipe_build", "The running hoodypipe.",
             registry=self.collectors).info({"version": hoodypipe.__version__})
        if process:
            ProcessCollector(registry=self.collectors)

    def _gauge(self, name: str, doc: str, read: Callable[[], int]) -> None:
        Gauge(name, doc, registry=self.collectors).set_function(read)

    def _spectator_count(self) -> int:
        try:
            return int(self._spectators())
        except Exception:
            self.log.failure("reading the spectator count failed")
            return 0

    # -- ITransferObserver ---------------------------------------------------

    def pipe_changed(self, status: PipeStatus) -> None:
        """Gauges are read at scrape time; nothing to count here."""

    def transfer_done(self, result: TransferResult) -> None:
        self._transfers.labels(result.state).inc()
        self._bytes.inc(max(0, result.bytes))
        self._duration.labels(result.state).observe(result.duration_sec)

    # -- the web layer -------------------------------------------------------

    def rejected(self, reason: str) -> None:
        """Count one request refused for ``reason`` (a short code like 'busy')."""
        if reason not in self._reasons:
            if _REASON_CODE.match(reason) and len(self._reasons) < _MAX_REASONS:
                self._reasons.add(reason)
            else:
                reason = "other"
        self._rejected.labels(reason).inc()

    def render(self) -> bytes:
        """The scrape body, in the Prometheus text format (``content_type``)."""
        return generate_latest(self.collectors)
