"""
The live dashboard: one self-contained HTML page per ``?progress`` visit.

The page carries its CSS and JavaScript inline, allowed by a per-response
nonce in a strict Content-Security-Policy (nothing else may load or run),
and fills itself from an EventSource on its own URL.  The only server value
placed in the HTML is the pipe name, escaped; everything the stream brings
is inserted as text by the script.
"""

from __future__ import annotations

import html
import secrets
from functools import cache
from importlib import resources
from urllib.parse import unquote

import attrs


@attrs.frozen
class Page:
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...]


@cache
def template() -> str:
    return (
        resources.files("hoodypipe.spectators")
        .joinpath("dashboard.html")
        .read_text(encoding="utf-8")
    )


def content_security_policy(nonce: str) -> str:
    return (
        "default-src 'none'; "
        f"script-src 'nonce-{nonce}'; "
        f"style-src 'nonce-{nonce}'; "
        "connect-src 'self'; "
        "img-src data:; "
        "base-uri 'none'; "
        "form-action 'none'; "
        "frame-ancestors 'none'"
    )


def display_name(name: str) -> str:
    """A pipe name as people read it: names are kept percent-encoded."""
    return unquote(name, errors="replace")


def render(name: str, nonce: str | None = None) -> Page:
    """The page for pipe ``name``; ``nonce`` is fresh unless a test fixes it."""
    if nonce is None:
        nonce = secrets.token_urlsafe(18)
    body = (
        template()
        .replace("{{nonce}}", nonce)
        .replace("{{name}}", html.escape(display_name(name), quote=True))
    )
    headers = (
        (b"Content-Security-Policy", content_security_policy(nonce).encode()),
        (b"Cache-Control", b"no-store"),
        (b"Referrer-Policy", b"no-referrer"),
        (b"X-Frame-Options", b"DENY"),
    )
    return Page(body.encode("utf-8"), headers)
