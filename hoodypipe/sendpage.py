"""
The send page: what a browser gets at ``/`` (and ``/api/v1/pipe/``).

A person with only a browser (a phone, a locked-down laptop) can send a file
or some text into a pipe and see the ``curl`` command that receives it.  The
page is one self-contained document: CSS and JavaScript inline, allowed by a
per-response nonce in the same strict Content-Security-Policy as the
dashboard, so nothing else may load or run.  No server value is placed in
the HTML at all; the script reads its own query string and inserts what the
server says (status lines, events) as text.

Only a request whose Accept prefers ``text/html`` gets it: curl (``*/*``, or
no Accept) keeps getting the plain-text cheat sheet.
"""

from __future__ import annotations

import secrets
from functools import cache
from importlib import resources

from twisted.web.server import Request

from hoodypipe.spectators import negotiation
from hoodypipe.spectators.dashboard import Page, content_security_policy

HTML = b"text/html; charset=utf-8"


@cache
def template() -> str:
    return resources.files("hoodypipe").joinpath("sendpage.html").read_text(encoding="utf-8")


def wanted(request: Request) -> bool:
    """Whether ``request`` prefers HTML (a browser navigating) over anything else."""
    accept = request.requestHeaders.getRawHeaders(b"accept")
    joined = ", ".join(v.decode("latin-1") for v in accept) if accept else None
    return negotiation.negotiate(joined) == negotiation.HTML


def render(nonce: str | None = None) -> Page:
    """The page; ``nonce`` is fresh unless a test fixes it."""
    if nonce is None:
        nonce = secrets.token_urlsafe(18)
    body = template().replace("{{nonce}}", nonce)
    headers = (
        (b"Content-Security-Policy", content_security_policy(nonce).encode()),
        (b"Cache-Control", b"no-store"),
        (b"Referrer-Policy", b"no-referrer"),
        (b"X-Frame-Options", b"DENY"),
    )
    return Page(body.encode("utf-8"), headers)


def serve(request: Request) -> tuple[bytes, bytes]:
    """Set the page's headers on ``request``; the body and its Content-Type."""
    page = render()
    for name, value in page.headers:
        request.setHeader(name, value)
    return page.body, HTML
