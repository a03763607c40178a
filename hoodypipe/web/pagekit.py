"""
What every HTML page of the relay shares: a fresh nonce, the strict
Content-Security-Policy it unlocks, the headers that keep a page out of
frames and referrers, and whether a request prefers HTML at all.

Pages carry their CSS and JavaScript inline; the nonce allows exactly those
and nothing else may load or run, so a page never depends on another origin.
"""

from __future__ import annotations

import secrets

import attrs
from twisted.web.server import Request

from hoodypipe.web import negotiation

HTML = b"text/html; charset=utf-8"


@attrs.frozen
class Page:
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...]


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def content_security_policy(nonce: str, **extra: str) -> str:
    """The nonce policy; ``extra`` adds or replaces directives (``media_src="blob:"``)."""
    directives = {
        "default-src": "'none'",
        "script-src": f"'nonce-{nonce}'",
        "style-src": f"'nonce-{nonce}'",
        "connect-src": "'self'",
        "img-src": "data:",
        "base-uri": "'none'",
        "form-action": "'none'",
        "frame-ancestors": "'none'",
    }
    for key, value in extra.items():
        directives[key.replace("_", "-")] = value
    return "; ".join(f"{key} {value}" for key, value in directives.items())


def page(body: str, nonce: str, **csp: str) -> Page:
    """A rendered page with its policy and the headers every page carries."""
    headers = (
        (b"Content-Security-Policy", content_security_policy(nonce, **csp).encode()),
        (b"Cache-Control", b"no-store"),
        (b"Referrer-Policy", b"no-referrer"),
        (b"X-Frame-Options", b"DENY"),
    )
    return Page(body.encode("utf-8"), headers)


def prefers_html(request: Request) -> bool:
    """Whether ``request`` prefers HTML (a browser navigating) over anything else."""
    return negotiation.negotiate(accept_header(request)) == negotiation.HTML


def accept_header(request: Request) -> str | None:
    """All Accept values of ``request`` as one list, or None when there is none."""
    accept = request.requestHeaders.getRawHeaders(b"accept")
    return ", ".join(v.decode("latin-1") for v in accept) if accept else None


def serve(request: Request, rendered: Page) -> tuple[bytes, bytes]:
    """Set a page's headers on ``request``; the body and its Content-Type."""
    for name, value in rendered.headers:
        request.setHeader(name, value)
    return rendered.body, HTML
