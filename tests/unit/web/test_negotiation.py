"""Which spectator feed an Accept header asks for: events, JSON or the page."""

from __future__ import annotations

import pytest

from hoodypipe.web import negotiation


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "sse"),
        ("", "sse"),
        ("*/*", "sse"),
        ("text/event-stream", "sse"),
        ("text/*", "sse"),
        ("application/json", "json"),
        ("application/json;q=0.9, */*;q=0.1", "json"),
        ("text/html", "html"),
        (
            "text/html,application/xhtml+xml,application/xml;q=0.9,"
            "image/avif,image/webp,*/*;q=0.8",
            "html",
        ),
        ("text/html;q=0.5, application/json", "json"),
        ("application/json, text/html", "json"),
        ("text/html, application/json", "html"),
        ("text/event-stream, text/html", "sse"),
        ("text/html;q=0, */*", "sse"),
        ("application/json;q=bogus", "sse"),
        ("TEXT/HTML", "html"),
    ],
)
def test_negotiate(accept: str | None, expected: str) -> None:
    assert negotiation.negotiate(accept) == expected
