"""A send's RequestBody in memory: its modes, the transitions between them,
and the peer probe of a held body (on a Clock, with a stand-in request)."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from hoodypipe.bytepath.body import HOLD_LIMIT, PROBE_SECONDS, Mode, RequestBody


class FakeRequest:
    """What a RequestBody asks of its RelayRequest, recorded."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.transport = StringTransport()
        self.paused = False
        self.aborted = False
        self.big_reads = False

    def call_later(self, delay: float, f: Any, *args: Any) -> Any:
        return self.clock.callLater(delay, f, *args)

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def use_read_size(self) -> None:
        self.big_reads = True

    def abort_connection(self) -> None:
        self.aborted = True

    def getClientAddress(self) -> str:
        return "peer"


class Sink:
    def __init__(self) -> None:
        self.data: list[tuple[bytes, int]] = []
        self.ended = 0
        self.errors: list[str] = []
        self.finished: list[bytes] = []

    def on_data(self, data: bytes, payload: int) -> None:
        self.data.append((data, payload))

    def on_end(self) -> None:
        self.ended += 1

    def on_error(self, why: str) -> None:
        self.errors.append(why)

    def finish(self, rest: bytes) -> None:
        self.finished.append(rest)

    @property
    def payload(self) -> int:
        return sum(n for _, n in self.data)


def body_for(length: int | None) -> tuple[RequestBody, FakeRequest, Sink]:
    request, sink = FakeRequest(), Sink()

    def finish(rest: bytes) -> None:
        """As the channel does: the body's end found, it tells the request."""
        sink.finish(rest)
        body.ended()

    body = RequestBody(request, length, finish if length is None else None)  # type: ignore[arg-type]
    return body, request, sink


def test_a_new_body_holds_and_pauses_past_the_hold_limit() -> None:
    body, request, _ = body_for(10 * HOLD_LIMIT)
    assert body.mode is Mode.HOLDING
    body.payload_received(b"x" * (HOLD_LIMIT - 1))
    assert not request.paused
    body.payload_received(b"x")
    assert request.paused
    assert len(request.clock.getDelayedCalls()) == 1  # the peer probe


def test_attach_sized_replays_what_was_held_then_streams() -> None:
    body, request, sink = body_for(9)
    body.payload_received(b"abc")
    body.attach(sink.on_data, sink.on_end, sink.on_error)
    assert body.mode is Mode.STREAMING and request.big_reads
    assert sink.data == [(b"abc", 3)]
    body.payload_received(b"defghi")
    body.ended()
    assert sink.data[-1] == (b"defghi", 6) and sink.ended == 1 and body.complete


def test_a_sized_body_complete_before_attach_ends_on_attach() -> None:
    body, _, sink = body_for(3)
    body.payload_received(b"abc")
    body.ended()
    assert body.complete and sink.ended == 0
    body.attach(sink.on_data, sink.on_end, sink.on_error)
    assert sink.data == [(b"abc", 3)] and sink.ended == 1


@pytest.mark.parametrize("decode, mode", [(False, Mode.RAW), (True, Mode.DECODING)])
def test_attach_chunked_scans_the_held_framing(decode: bool, mode: Mode) -> None:
    body, _, sink = body_for(None)
    body.raw_received(b"3\r\nabc\r\n")
    body.attach(sink.on_data, sink.on_end, sink.on_error, decode=decode)
    assert body.mode is mode
    body.raw_received(b"2\r\nde\r\n0\r\n\r\n")
    assert sink.payload == 5 and sink.finished == [b""]
    if decode:
        assert b"".join(d for d, _ in sink.data) == b"abcde"


def test_broken_framing_is_reported_once_and_the_rest_dropped() -> None:
    body, _, sink = body_for(None)
    body.attach(sink.on_data, sink.on_end, sink.on_error)
    body.raw_received(b"zz\r\n")
    assert body.mode is Mode.DISCARDING
    assert sink.errors == ["Malformed request body: chunk size is not a hex number"]
    body.raw_received(b"3\r\nabc\r\n")
    assert sink.data == [] and len(sink.errors) == 1


def test_broken_framing_before_a_consumer_cuts_the_connection() -> None:
    body, request, _ = body_for(None)
    body.raw_received(b"3\r\nabc\r\n")
    body.discard()
    assert body.mode is Mode.DISCARDING and not request.aborted
    body2, request2, sink = body_for(None)
    body2.attach(sink.on_data, sink.on_end, sink.on_error)
    body2._on_error = None  # as if the relay had gone: nobody to tell
    body2.raw_received(b"zz\r\n")
    assert request2.aborted


def test_discarding_drops_everything_and_reads_on() -> None:
    body, request, sink = body_for(10 * HOLD_LIMIT)
    body.payload_received(b"x" * HOLD_LIMIT)
    assert request.paused
    body.discard()
    assert body.mode is Mode.DISCARDING and not request.paused
    assert request.clock.getDelayedCalls() == []
    body.payload_received(b"more")
    body.raw_received(b"more")
    body.ended()
    assert sink.data == [] and sink.ended == 0


def test_no_way_out_of_discarding() -> None:
    body, _, sink = body_for(5)
    body.discard()
    with pytest.raises(RuntimeError, match="no way from discarding to streaming"):
        body.attach(sink.on_data, sink.on_end, sink.on_error)


def test_the_dead_failed_field_is_gone() -> None:
    body, _, _ = body_for(5)
    assert not hasattr(body, "failed")


def test_the_probe_stops_when_the_request_ends_however_it_ends() -> None:
    """Finding 6: a held, complete body whose request ended kept its probe,
    which then read a request that no longer had a channel."""
    body, request, _ = body_for(HOLD_LIMIT)
    body.payload_received(b"x" * HOLD_LIMIT)
    body.ended()
    assert request.clock.getDelayedCalls()
    body.close()
    assert request.clock.getDelayedCalls() == []
    request.clock.advance(10 * PROBE_SECONDS)
    assert not request.aborted


def test_the_probe_keeps_looking_while_the_body_is_held() -> None:
    body, request, _ = body_for(10 * HOLD_LIMIT)
    body.payload_received(b"x" * HOLD_LIMIT)
    for _ in range(3):
        request.clock.advance(PROBE_SECONDS)
        assert len(request.clock.getDelayedCalls()) == 1
    assert not request.aborted  # a StringTransport has no socket: the peer is open


@pytest.mark.parametrize("length, sent, complete, servable", [
    (3, b"abc", True, True),  # whole: served when the receivers come
    (10, b"abc", False, False),  # cut short
])
def test_a_sized_body_after_the_sender_half_closed(
    length: int, sent: bytes, complete: bool, servable: bool,
) -> None:
    body, request, _ = body_for(length)
    body.payload_received(sent)
    if complete:
        body.ended()
    assert body.read_closed() is servable
    # While held, a servable body watches the peer (a reset shows a real close).
    assert bool(request.clock.getDelayedCalls()) is servable


def test_a_held_chunked_body_after_a_half_close_is_decided_on_attach() -> None:
    body, request, sink = body_for(None)
    body.raw_received(b"3\r\nabc\r\n")
    assert body.read_closed()  # its end is not known yet
    body.attach(sink.on_data, sink.on_end, sink.on_error)
    assert request.aborted  # the held bytes had no end: the sender is gone

    whole, request2, sink2 = body_for(None)
    whole.raw_received(b"3\r\nabc\r\n0\r\n\r\n")
    assert whole.read_closed()
    whole.attach(sink2.on_data, sink2.on_end, sink2.on_error)
    assert not request2.aborted and sink2.finished == [b""]
