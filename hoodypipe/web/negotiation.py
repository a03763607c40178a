"""
Which view of a watched pipe a ``?progress`` request wants, from its Accept.

Browsers navigating to the URL prefer ``text/html`` and get the dashboard;
scripts asking for ``application/json`` get one snapshot; everything else
(EventSource's ``text/event-stream``, curl's ``*/*``, no Accept at all) gets
the event stream, so ``curl -N URL?progress`` just works.
"""

from __future__ import annotations

from typing import Literal

Representation = Literal["html", "json", "sse"]

HTML: Representation = "html"
JSON: Representation = "json"
SSE: Representation = "sse"

_TYPES: dict[str, Representation] = {
    "text/html": HTML,
    "application/xhtml+xml": HTML,
    "application/json": JSON,
    "text/event-stream": SSE,
}


def _quality(params: list[str]) -> float:
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0
            return min(1.0, max(0.0, q))
    return 1.0


def negotiate(accept: str | None) -> Representation:
    """
    Pick html, json or sse for an Accept header value.

    Only media types that name a representation exactly count: wildcards
    (``*/*``, ``text/*``) express no preference, so they fall through to the
    event stream.  Between html and json the higher quality wins, then the
    one listed first; an explicit ``text/event-stream`` at least as strong
    as both wins outright.
    """
    if not accept:
        return SSE
    best: dict[Representation, tuple[float, int]] = {}
    for position, item in enumerate(accept.split(",")):
        media, *params = item.split(";")
        kind = _TYPES.get(media.strip().lower())
        if kind is None:
            continue
        q = _quality(params)
        if q <= 0:
            continue
        seen = best.get(kind)
        if seen is None or q > seen[0]:
            best[kind] = (q, position)
    if not best:
        return SSE
    ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0] != SSE, kv[1][1]))
    return ranked[0][0]
