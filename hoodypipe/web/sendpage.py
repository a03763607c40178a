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

from functools import cache
from importlib import resources

from twisted.web.server import Request

from hoodypipe.web import pagekit


@cache
def template() -> str:
    return resources.files("hoodypipe.web").joinpath("sendpage.html").read_text(encoding="utf-8")


def wanted(request: Request) -> bool:
    """Whether ``request`` prefers HTML (a browser navigating) over anything else."""
    return pagekit.prefers_html(request)


def render(nonce: str | None = None) -> pagekit.Page:
    """The page; ``nonce`` is fresh unless a test fixes it."""
    nonce = nonce or pagekit.new_nonce()
    return pagekit.page(template().replace("{{nonce}}", nonce), nonce)


def serve(request: Request) -> tuple[bytes, bytes]:
    """Set the page's headers on ``request``; the body and its Content-Type."""
    return pagekit.serve(request, render())
