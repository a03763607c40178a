"""
The liveness document served at ``/api/v1/pipe/health`` (GET and HEAD).

A load balancer or ``curl -f`` can probe it; while the server drains before
stopping it says so, and ``health_code`` turns that into a 503 so a balancer
that checks health sends new pipes elsewhere.
"""

from __future__ import annotations

import json

import hoodypipe
from hoodypipe.ops.metrics import PipeCounts

CONTENT_TYPE = "application/json"


def health_body(registry: PipeCounts, started_at: float, now: float) -> bytes:
    """JSON: status, version, uptime, pipe counts and whether we are draining."""
    draining = bool(registry.draining)
    body = {
        "status": "draining" if draining else "ok",
        "version": hoodypipe.__version__,
        "uptimeSec": round(max(0.0, now - started_at), 3),
        "waiting": registry.waiting_count(),
        "active": registry.active_count(),
        "draining": draining,
    }
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def health_code(registry: PipeCounts) -> int:
    """200 while serving, 503 while draining (the body says the same)."""
    return 503 if registry.draining else 200
