"""The reserved pages: help text (or the browser send page), robots.txt, favicon."""

from __future__ import annotations

from collections.abc import Callable

from twisted.web.server import Request

from hoodypipe.web import noscript, sendpage

TEXT = b"text/plain; charset=utf-8"
Page = Callable[[Request], tuple[bytes, bytes]]


def _base(request: Request) -> str:
    host = (request.getHeader(b"host") or b"localhost").decode("latin-1")
    host = "".join(c for c in host if c.isalnum() or c in ".-:[]")[:255]
    scheme = "https" if request.isSecure() else "http"
    forwarded = request.getHeader(b"x-forwarded-proto")
    if forwarded in (b"http", b"https"):
        scheme = forwarded.decode()
    return f"{scheme}://{host or 'localhost'}"


def help_text(request: Request) -> tuple[bytes, bytes]:
    base = _base(request)
    return (f"""hoodypipe: stream bytes from one host to others through a URL.

Send (either side may come first):
  curl -T myfile {base}/mypath
  tar czf - ./dir | curl -T - "{base}/mypath?size=3G"

Receive:
  curl {base}/mypath > myfile
  curl {base}/mypath | tar xzf -

Several receivers (every party gives the same n):
  curl -T myfile "{base}/mypath?n=3"
  curl "{base}/mypath?n=3" > myfile          # three times

Wait longer for the other side (seconds, 1..3600, default 300):
  curl "{base}/mypath?wait=3600" > myfile

Watch a transfer without taking part:
  curl -N "{base}/mypath?progress"           # Server-Sent Events
  curl "{base}/mypath?status"                # one JSON snapshot
  open {base}/mypath?progress in a browser   # live dashboard

The same pipes live under {base}/api/v1/pipe/mypath.
""").encode(), TEXT


def index(request: Request) -> tuple[bytes, bytes]:
    """The send page for a browser; the cheat sheet for curl and everyone else."""
    request.setHeader(b"Vary", b"Accept")
    if sendpage.wanted(request):
        return sendpage.serve(request)
    return help_text(request)


def robots(request: Request) -> tuple[bytes, bytes]:
    return b"User-agent: *\nDisallow: /\n", TEXT


# A 16x16 single-colour ICO would be noise; browsers accept an empty answer.
def favicon(request: Request) -> tuple[bytes, bytes]:
    request.setResponseCode(204)
    return b"", b"image/x-icon"


def noscript_page(request: Request) -> tuple[bytes, bytes]:
    return noscript.serve(request, _base(request))


RESERVED: dict[bytes, Page] = {
    b"": index,
    b"noscript": noscript_page,
    b"help": help_text,
    b"robots.txt": robots,
    b"favicon.ico": favicon,
}
