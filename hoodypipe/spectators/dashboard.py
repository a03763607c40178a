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
from functools import cache
from importlib import resources
from urllib.parse import unquote

from hoodypipe.web import pagekit
from hoodypipe.web.pagekit import Page, content_security_policy

__all__ = ["Page", "content_security_policy", "display_name", "render", "template"]


@cache
def template() -> str:
    return (
        resources.files("hoodypipe.spectators")
        .joinpath("dashboard.html")
        .read_text(encoding="utf-8")
    )


def display_name(name: str) -> str:
    """A pipe name as people read it: names are kept percent-encoded."""
    return unquote(name, errors="replace")


def render(name: str, nonce: str | None = None) -> Page:
    """The page for pipe ``name``; ``nonce`` is fresh unless a test fixes it."""
    nonce = nonce or pagekit.new_nonce()
    body = (
        template()
        .replace("{{nonce}}", nonce)
        .replace("{{name}}", html.escape(display_name(name), quote=True))
    )
    return pagekit.page(body, nonce)
