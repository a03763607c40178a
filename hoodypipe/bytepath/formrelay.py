"""
The relay of a multipart form send: only its forwarded part reaches the
receivers.

It differs from an ordinary ``Relay`` in three ways, and only for sends whose
Content-Type is ``multipart/form-data``, so ordinary sends pay nothing for
it: every read goes through a ``FirstPartReader`` first; the receivers are
answered only when the part's headers have arrived (they say the part's type
and filename); and a malformed body, or no forwardable part within
``head_timeout`` of the start, answers receivers still waiting with a 400
rather than cutting connections that never had a response.

With ``?sha256`` the digest is of the forwarded part's bytes (what the
receivers get), not of the multipart body the sender sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.web.server import Request

from hoodypipe.bytepath.multipart import MALFORMED, FirstPartReader, PartHead
from hoodypipe.bytepath.relay import Relay
from hoodypipe.bytepath.request import RelayRequest
from hoodypipe.core.registry import Pipe

Answer = Callable[[list[Request], PartHead], None]


class FormRelay(Relay):
    """Moves one form part's bytes and reports how the transfer ended."""

    def __init__(
        self,
        pipe: Pipe,
        sender: RelayRequest,
        receivers: list[Request],
        *,
        boundary: bytes,
        clock: IReactorTime,
        head_timeout: float,
        answer: Answer,
        refuse: Callable[[Request], None],
        **relay: Any,
    ) -> None:
        super().__init__(pipe, sender, receivers, **relay)
        self._clock = clock
        self._head_timeout = head_timeout
        self._answer = answer
        self._refuse = refuse
        self._deadline: IDelayedCall | None = None
        self.answered = False
        self.reader = FirstPartReader(
            boundary,
            on_found=self._found,
            on_head=self._head,
            # The decoded part is what the receivers get, so it is what ?sha256 hashes.
            on_data=self._write_decoded if self.hasher is None else self._write_decoded_hashed,
            on_end=self._body_ended,
            on_malformed=self.malformed,
        )

    def start(self) -> None:
        self._watch_parties()
        self._deadline = self._clock.callLater(self._head_timeout, self._overdue)
        self.body.attach(self.reader.feed, self.reader.finish, self.abort, decode=True)

    def _found(self) -> None:
        self._stop_deadline()

    def _head(self, head: PartHead) -> None:
        self._stop_deadline()
        self.answered = True
        self._answer([valve.request for valve in self.valves], head)

    def _overdue(self) -> None:
        self._deadline = None
        self.malformed()

    def malformed(self) -> None:
        """Fail as ``Malformed multipart body``: a 400 for whoever has no answer yet."""
        if self.finished:
            return
        self.reader.stop()
        if not self.answered:
            valves, self.valves, self._transports = self.valves, [], []
            for valve in valves:
                valve.request.unregisterProducer()
                self._refuse(valve.request)
        self.abort(MALFORMED)

    def _fail(self, reason: str, tell_sender: bool) -> None:
        self._stop_deadline()
        self.reader.stop()
        super()._fail(reason, tell_sender)

    def _stop_deadline(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None
