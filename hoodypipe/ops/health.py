"""
The liveness document served at ``/api/v1/pipe/health`` (GET and HEAD).

A load balancer or ``curl -f`` can probe it; while the server drains before
stopping it says so, and ``health_code`` turns that into a 503 so a balancer
that checks health sends new pipes elsewhere. Beside our own fields it carries
the ones the Hoody pipe kit's clients read (``service``, ``started``, ``pid``,
``built``, ``memory``, ``fds``). Nothing in it is secret: no client addresses,
no configuration.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime

import attrs

import hoodypipe
from hoodypipe.ops.metrics import PipeCounts

CONTENT_TYPE = "application/json"
SERVICE = "hoodypipe"


@attrs.frozen
class ProcessFacts:
    """What the kit's health reports about the process; None where unknown."""

    pid: int
    memory: int | None
    fds: int | None


def rss_bytes() -> int | None:
    """Resident memory now (not the peak ``getrusage`` gives), from /proc."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            resident = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return resident * os.sysconf("SC_PAGE_SIZE")


def open_fds() -> int | None:
    """Open descriptors, not counting the one used to list them."""
    try:
        return max(0, len(os.listdir("/proc/self/fd")) - 1)
    except OSError:
        return None


def process_facts() -> ProcessFacts:
    return ProcessFacts(pid=os.getpid(), memory=rss_bytes(), fds=open_fds())


def iso_utc(timestamp: float) -> str:
    """``2026-12-03T18:34:03.123Z``: ISO 8601, UTC, ending in Z."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def health_body(
    registry: PipeCounts, started_at: float, now: float,
    facts: Callable[[], ProcessFacts] = process_facts,
) -> bytes:
    """JSON: status, version, uptime, pipe counts, draining, and the kit's fields."""
    draining = bool(registry.draining)
    process = facts()
    body = {
        "status": "draining" if draining else "ok",
        "version": hoodypipe.__version__,
        "uptimeSec": round(max(0.0, now - started_at), 3),
        "waiting": registry.waiting_count(),
        "active": registry.active_count(),
        "draining": draining,
        "service": SERVICE,
        "started": iso_utc(started_at),
        "pid": process.pid,
        "built": hoodypipe.__version__,
        "memory": process.memory,
        "fds": process.fds,
    }
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def health_code(registry: PipeCounts) -> int:
    """200 while serving, 503 while draining (the body says the same)."""
    return 503 if registry.draining else 200
