"""
A startup check that this Twisted still has the internals the byte path
leans on (listed at the top of ``request.py`` and ``channel.py``).

Without it, a Twisted release that renamed one of them would only fail on
the first chunked send, deep inside a transfer. With it, the service refuses
to start and says which Twisted lacks what. Where it can, the check drives a
real ``HTTPChannel`` over an in-memory transport and looks at what the
channel does, rather than only at attribute names.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.testing import StringTransport
from twisted.web import http

import twisted

_MISSING = object()
_REQUEST_LINE = ("_command", "_path", "_version")


class TwistedMismatch(RuntimeError):
    """This Twisted lacks something the byte path relies on."""


def check_twisted() -> None:
    """Raise ``TwistedMismatch`` naming every missing piece, or return."""
    problems = _static_problems()
    if not problems:
        try:
            problems = _channel_problems()
        except Exception as e:  # an internal that changed shape, found the hard way
            problems = [f"driving an HTTPChannel failed: {e!r}"]
    if problems:
        raise TwistedMismatch(
            f"hoodypipe cannot run on Twisted {twisted.__version__}: "
            + "; ".join(problems)
            + ". Use a Twisted release within setup.cfg's range.")


def _static_problems() -> list[str]:
    problems = []
    decoder = getattr(http, "_ChunkedTransferDecoder", None)
    if not isinstance(decoder, type):
        problems.append("twisted.web.http._ChunkedTransferDecoder is gone")
    if not hasattr(http.Request, "_disconnected"):
        problems.append("Request._disconnected is gone")
    for name in ("_respondToBadRequestAndDisconnect", "lineLengthExceeded",
                 "headerReceived", "allHeadersReceived", "allContentReceived",
                 "requestDone", "writeHeaders"):
        if not callable(getattr(http.HTTPChannel, name, None)):
            problems.append(f"HTTPChannel.{name}() is gone")
    for name in ("MAX_LENGTH", "maxHeaders", "totalHeadersSize"):
        if not isinstance(getattr(http.HTTPChannel, name, None), int):
            problems.append(f"HTTPChannel.{name} is not a number")
    return problems


class _Probe(http.Request):
    """Records what the channel shows a request whose headers are in."""

    seen: dict[str, Any]
    ended = False

    def gotLength(self, length: int | None) -> None:
        channel = self.channel
        self.seen = {name: getattr(channel, name, _MISSING)
                     for name in (*_REQUEST_LINE, "_transferDecoder")}
        super().gotLength(length)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        self.ended = True


def _connected(channel: http.HTTPChannel) -> http.HTTPChannel:
    channel.requestFactory = _Probe
    channel.makeConnection(StringTransport())
    return channel


def _channel_problems() -> list[str]:
    problems = []
    channel = _connected(http.HTTPChannel())
    if not isinstance(getattr(channel, "requests", None), list):
        return ["HTTPChannel.requests is not a list"]
    channel.dataReceived(b"PUT /probe HTTP/1.1\r\nHost: x\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
    probe = channel.requests[-1] if channel.requests else None
    if not isinstance(probe, _Probe) or not hasattr(probe, "seen"):
        return ["HTTPChannel no longer calls Request.gotLength after the headers"]
    expected = (b"PUT", b"/probe", b"HTTP/1.1")
    for name, value in zip(_REQUEST_LINE, expected, strict=True):
        if probe.seen[name] != value:
            problems.append(f"HTTPChannel.{name} is not the request line's part "
                            "when gotLength is called")
    if problems:
        return problems
    decoder = probe.seen["_transferDecoder"]
    finish = getattr(decoder, "finishCallback", None)
    if not isinstance(decoder, http._ChunkedTransferDecoder) or not callable(finish):
        problems.append("HTTPChannel._transferDecoder is not a _ChunkedTransferDecoder "
                        "with a finishCallback for a chunked body")
    else:
        finish(b"")
        if not probe.ended:
            problems.append("a chunked decoder's finishCallback no longer ends the body")

    refused: list[bool] = []
    bad = _connected(http.HTTPChannel())

    def refuse() -> None:
        refused.append(True)
        bad.loseConnection()

    bad._respondToBadRequestAndDisconnect = refuse  # type: ignore[method-assign]
    bad.dataReceived(b"NOT A REQUEST LINE\r\n\r\n")
    if not refused:
        problems.append("HTTPChannel refuses a malformed request line without "
                        "_respondToBadRequestAndDisconnect()")
    return problems
