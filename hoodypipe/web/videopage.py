"""
The ``?video`` player: what a browser gets for ``GET <pipe>?video``.

Opening a pipe URL in a browser to watch a live encode (``ffmpeg ... -f webm
- | curl -T - URL``) would otherwise download the bytes. A browser whose
Accept prefers ``text/html`` gets this page instead; it takes no slot
itself. Its script fetches the same path as an ordinary receiver, detects
WebM or fragmented MP4 (or MPEG-TS, where the browser's Media Source
Extensions take it) from the first bytes, and plays the stream through MSE.
Every other client (curl, VLC, mpv) is an ordinary receiver of the raw bytes.

The page is self-contained under the same nonce policy as the others, plus
``media-src blob:`` for the MediaSource URL. No server value is placed in it:
the script reads its own location.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from twisted.web.server import Request

from hoodypipe.web import pagekit


@cache
def template() -> str:
    return resources.files("hoodypipe.web").joinpath("videopage.html").read_text(
        encoding="utf-8")


def wanted(request: Request) -> bool:
    """Whether ``request`` prefers HTML: a browser navigating, not a media player."""
    return pagekit.prefers_html(request)


def render(nonce: str | None = None) -> pagekit.Page:
    """The page; ``nonce`` is fresh unless a test fixes it."""
    nonce = nonce or pagekit.new_nonce()
    return pagekit.page(template().replace("{{nonce}}", nonce), nonce, media_src="blob:")


def serve(request: Request) -> tuple[bytes, bytes]:
    """Set the page's headers on ``request``; the body and its Content-Type."""
    request.setHeader(b"Vary", b"Accept")
    return pagekit.serve(request, render())
