"""
The byte path: one sender's body fanned out to its receivers' sockets.

Per read it does exactly this: add the payload count to the pipe, write the
same ``bytes`` object to every receiver's transport. Backpressure is
Twisted's own: each receiver transport pauses its ``ReceiverValve`` when its
buffer passes its limit, and while any valve is shut the sender's socket is
not read. Nothing else happens per chunk; watchers read ``pipe.bytes`` on
their own timers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Request
from zope.interface import implementer

from hoodypipe.bytepath.request import RelayRequest, response_open
from hoodypipe.core.registry import SENDER_GONE, ITransfer, Pipe

ALL_RECEIVERS_GONE = "All receivers disconnected before transfer completed"


@implementer(IPushProducer)
class ReceiverValve:
    """Registered on one receiver's transport; tells the relay when it is full."""

    def __init__(self, relay: Relay, request: Request) -> None:
        self.relay = relay
        self.request = request
        self.transport: Any = request.transport
        self.shut = False

    def pauseProducing(self) -> None:
        if not self.shut:
            self.shut = True
            self.relay.valve_shut()

    def resumeProducing(self) -> None:
        if self.shut:
            self.shut = False
            self.relay.valve_opened()

    def stopProducing(self) -> None:
        self.relay.receiver_lost(self)


@implementer(ITransfer)
class Relay:
    """Moves one transfer's bytes and reports how it ended."""

    log = Logger()

    def __init__(
        self,
        pipe: Pipe,
        sender: RelayRequest,
        receivers: list[Request],
        ended: Callable[[Pipe, bool, str | None], None],
        receiver_left: Callable[[Pipe], None],
        sender_status: Callable[[str], None],
        sender_end: Callable[[str | None], None],
    ) -> None:
        assert sender.body is not None
        self.pipe = pipe
        self.sender = sender
        self.body = sender.body
        self._ended = ended
        self._receiver_left = receiver_left
        self._sender_status = sender_status
        self._sender_end = sender_end
        self.valves = [ReceiverValve(self, r) for r in receivers]
        self._transports: list[Any] = [v.transport for v in self.valves]
        self._shut = 0
        self.finished = False
        # Raw bytes can go straight through only when every receiver's response
        # is framed the way the sender's body is; otherwise Request.write frames.
        self._decode = any(bool(r.chunked) != self.body.chunked for r in receivers)

    def start(self) -> None:
        self._watch_parties()
        self.body.attach(
            self._write_decoded if self._decode else self._write,
            self._body_ended,
            self.abort,
            decode=self._decode,
        )

    def _watch_parties(self) -> None:
        for valve in self.valves:
            valve.request.registerProducer(valve, True)
            valve.request.notifyFinish().addErrback(self._receiver_failed, valve)
        self.sender.notifyFinish().addErrback(self._sender_failed)

    # -- the hot path -------------------------------------------------------

    def _write(self, data: bytes, payload: int) -> None:
        self.pipe.bytes += payload
        if data:
            for transport in self._transports:
                transport.write(data)

    def _write_decoded(self, data: bytes, payload: int) -> None:
        self.pipe.bytes += payload
        for valve in self.valves:
            valve.request.write(data)

    def valve_shut(self) -> None:
        self._shut += 1
        if self._shut == 1:
            self.body.pause()

    def valve_opened(self) -> None:
        self._shut -= 1
        if self._shut == 0 and not self.finished:
            self.body.resume()

    # -- endings ------------------------------------------------------------

    def _body_ended(self) -> None:
        if self.finished:
            return
        self.finished = True
        self._sender_status("[INFO] Upload complete.")
        for valve in self.valves:
            request = valve.request
            request.unregisterProducer()
            if response_open(request):
                request.finish()
        self.body.resume()
        self._sender_end(None)
        self._ended(self.pipe, True, None)

    def _sender_failed(self, reason: Failure) -> None:
        if not self.finished:
            self._fail(SENDER_GONE, tell_sender=False)

    def _receiver_failed(self, reason: Failure, valve: ReceiverValve) -> None:
        self.receiver_lost(valve)

    def receiver_lost(self, valve: ReceiverValve) -> None:
        if self.finished or valve not in self.valves:
            return
        self.valves.remove(valve)
        self._transports.remove(valve.transport)
        if valve.shut:
            valve.shut = False
            self.valve_opened()
        if not self.valves:
            self._sender_status("[INFO] A receiver disconnected.")
            self._fail(ALL_RECEIVERS_GONE, tell_sender=True)
        else:
            self._receiver_left(self.pipe)

    def abort(self, reason: str) -> None:
        """End the transfer as failed (idle timeout, shutdown, broken body)."""
        if not self.finished:
            self._fail(reason, tell_sender=True)

    def _fail(self, reason: str, tell_sender: bool) -> None:
        self.finished = True
        self.log.info("pipe {name} failed: {reason}", name=self.pipe.name, reason=reason)
        for valve in self.valves:
            valve.transport.abortConnection()
        self.valves = []
        self._transports = []
        if tell_sender:
            self._sender_end(reason + ".")
        self._ended(self.pipe, False, reason)
