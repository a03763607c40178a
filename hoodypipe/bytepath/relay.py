"""
The byte path: one sender's body fanned out to its receivers' sockets.

Per read it does exactly this: add the payload count to the pipe, write the
same ``bytes`` object to every receiver (``sockets``: straight to its socket
when nothing is queued there, else through its transport). Backpressure is
Twisted's own: each receiver transport pauses its ``ReceiverValve`` when its
buffer passes its limit, and while any valve is shut the sender's socket is
not read. Nothing else happens per chunk; watchers read ``pipe.bytes`` on
their own timers.

With ``?sha256`` a ``StreamHasher`` is one more consumer: it is fed the
payload of every read and shuts its own valve when it falls behind; the
transfer completes only once its digest is known. Which per-read callback
runs is chosen once, at the start, so a transfer without ``?sha256`` does no
extra work per read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Request
from zope.interface import implementer

from hoodypipe.bytepath.hasher import HashRunner, StreamHasher
from hoodypipe.bytepath.request import RelayRequest, response_open
from hoodypipe.bytepath.sockets import Writer, receiver_writer
from hoodypipe.core.registry import SENDER_GONE, ITransfer, Pipe

ALL_RECEIVERS_GONE = "All receivers disconnected before transfer completed"
HASH_FAILED = "Hashing the payload failed"


@implementer(IPushProducer)
class ReceiverValve:
    """Registered on one receiver's transport; tells the relay when it is full."""

    def __init__(self, relay: Relay, request: Request) -> None:
        self.relay = relay
        self.request = request
        self.transport: Any = request.transport
        self.writer = receiver_writer(self.transport, relay.sender.read_size)
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
        hashing: HashRunner | None = None,
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
        self._transports: list[Writer] = [v.writer for v in self.valves]
        self._shut = 0
        self.finished = False
        self._digesting = False
        # Raw bytes can go straight through only when every receiver's response
        # is framed the way the sender's body is; otherwise Request.write frames.
        self._decode = any(bool(r.chunked) != self.body.chunked for r in receivers)
        self.hasher: StreamHasher | None = None
        if hashing is not None:
            self.hasher = StreamHasher(hashing, self.valve_shut, self.valve_opened)
            self._feed = self.hasher.feed

    def start(self) -> None:
        self._watch_parties()
        on_data = self._write_decoded if self._decode else self._write
        tap = None
        hasher = self.hasher
        if hasher is not None:
            if self.body.chunked and not self._decode:
                tap = hasher.feed_slice  # raw reads forwarded; the payload hashed
            else:
                on_data = self._write_decoded_hashed if self._decode else self._write_hashed
        self.body.attach(on_data, self._body_ended, self.abort, decode=self._decode, tap=tap)

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

    # ``data`` is all payload in these two (a sized body, or decoded chunks).

    def _write_hashed(self, data: bytes, payload: int) -> None:
        self.pipe.bytes += payload
        for transport in self._transports:
            transport.write(data)
        self._feed(data)

    def _write_decoded_hashed(self, data: bytes, payload: int) -> None:
        self.pipe.bytes += payload
        for valve in self.valves:
            valve.request.write(data)
        self._feed(data)

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
        if self.finished or self._digesting:
            return
        if self.hasher is None:
            self.finished = True
            self._sender_status("[INFO] Upload complete.")
            self._complete()
            return
        # Every byte is in; the receivers are answered once the receipt is ready.
        self._digesting = True
        self._sender_status("[INFO] Upload complete.")
        self.hasher.finish().addCallbacks(self._digested, self._digest_failed)

    def _digested(self, hexdigest: str) -> None:
        if self.finished:
            return
        self.finished = True
        self.pipe.sha256 = hexdigest
        self._sender_status(f"[INFO] sha256: {hexdigest}")
        self._complete()

    def _digest_failed(self, reason: Failure) -> None:
        if not self.finished:
            self._fail(HASH_FAILED, tell_sender=True)

    def _complete(self) -> None:
        for valve in self.valves:
            request = valve.request
            request.unregisterProducer()
            if response_open(request):
                request.finish()
        self.body.resume()
        self._sender_end(None)
        self._ended(self.pipe, True, None)

    def _sender_failed(self, reason: Failure) -> None:
        # Gone after its whole body arrived (the digest pending): nothing is
        # missing, so the receivers still get a complete response.
        if not self.finished and not self._digesting:
            self._fail(SENDER_GONE, tell_sender=False)

    def _receiver_failed(self, reason: Failure, valve: ReceiverValve) -> None:
        self.receiver_lost(valve)

    def receiver_lost(self, valve: ReceiverValve) -> None:
        if self.finished or valve not in self.valves:
            return
        self.valves.remove(valve)
        self._transports.remove(valve.writer)
        if valve.shut:
            valve.shut = False
            self.valve_opened()
        if self._digesting:
            # Every byte was already written to it; a receiver of a sized body
            # may well close as soon as it has them, before the digest is in.
            return
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
        if self.hasher is not None:
            self.hasher.cancel()
        self.log.info("pipe {name} failed: {reason}", name=self.pipe.name, reason=reason)
        for valve in self.valves:
            valve.transport.abortConnection()
        self.valves = []
        self._transports = []
        if tell_sender:
            self._sender_end(reason + ".")
        self._ended(self.pipe, False, reason)
