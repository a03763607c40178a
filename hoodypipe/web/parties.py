"""
The HTTP side of a sender and a receiver, as the registry's rules see them.

These adapters only turn the registry's decisions into bytes on a response
(worded by ``wording``); they hold no rules of their own.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.web.server import Request
from zope.interface import implementer

from hoodypipe.bytepath.request import RelayRequest, abort, response_open
from hoodypipe.core.errors import Refusal
from hoodypipe.core.outcomes import Refused, SenderNews
from hoodypipe.core.parties import IReceiver, ISender
from hoodypipe.web import wording
from hoodypipe.web.headers import FIXED, SANDBOX

TEXT = b"text/plain; charset=utf-8"
# Reason phrases twisted.web does not know (it would say "Unknown Status").
_PHRASES = {429: b"Too Many Requests"}


def set_common_headers(request: Request) -> None:
    for name, value in FIXED:
        request.setHeader(name, value)


def write_refusal(request: Request, refusal: Refusal) -> bytes:
    """Set up ``request`` to answer with ``refusal``; returns the body to write."""
    body = refusal.body
    request.setResponseCode(refusal.status, _PHRASES.get(refusal.status))
    request.setHeader(b"Content-Type", TEXT)
    request.setHeader(b"Content-Length", b"%d" % len(body))
    request.setHeader(b"Cache-Control", b"no-store")
    request.setHeader(*SANDBOX)
    set_common_headers(request)
    return body


def refuse_now(request: Request, refusal: Refusal) -> None:
    """Answer with ``refusal`` and end the response, whatever the request was."""
    if not response_open(request):
        return
    if request.startedWriting:
        # Too late for a status code: cut it so it never looks complete.
        abort(request)
        return
    body = write_refusal(request, refusal)
    request.write(body)
    if isinstance(request, RelayRequest):
        request.finish_send()
    else:
        request.finish()


@implementer(ISender)
class SenderParty:
    """A sender's response: 200 at once, then one status line per event.

    The rules speak through ``tell``/``refuse``; the byte path writes its own
    lines through ``status``/``end``.
    """

    def __init__(self, request: RelayRequest) -> None:
        self.request = request
        request.setResponseCode(200)
        request.setHeader(b"Content-Type", TEXT)
        request.setHeader(b"Cache-Control", b"no-store")
        request.setHeader(b"X-Accel-Buffering", b"no")
        set_common_headers(request)

    def tell(self, news: SenderNews) -> None:
        self.status(wording.sender_line(news))

    def refuse(self, refused: Refused) -> None:
        self.end(wording.refusal(refused).reason)

    def status(self, line: str) -> None:
        request = self.request
        if response_open(request):
            request.write_line(line.encode() + b"\n")

    def end(self, error: str | None) -> None:
        if error is None:
            self.status("[INFO] Transfer complete.")
        else:
            self.status(f"[ERROR] {error}")
        self.request.finish_send()


@implementer(IReceiver)
class ReceiverParty:
    """A receiver waiting for its sender; answered with a body or a refusal."""

    def __init__(
        self, request: Request,
        on_refusal: Callable[[Request, Refusal], None] | None = None,
    ) -> None:
        self.request = request
        self._on_refusal = on_refusal

    def refuse(self, refused: Refused) -> None:
        """Refusals decided later by the rules (408, 500, 503) are counted too."""
        self.answer_refusal(wording.refusal(refused))

    def answer_refusal(self, answer: Refusal) -> None:
        """A refusal the web layer decided (a malformed form), counted the same way."""
        if self._on_refusal is not None:
            self._on_refusal(self.request, answer)
        refuse_now(self.request, answer)
