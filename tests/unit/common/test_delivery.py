"""One delivery's tries on a Clock, against an in-memory receiver (StubTreq)."""

from __future__ import annotations

import pytest
from twisted.internet.defer import CancelledError
from twisted.internet.task import Clock
from twisted.logger import LogEvent, formatEvent

from hoodypipe.common.delivery import Delivery, Sender, describe_error, redact_url
from hoodypipe.common.retry import RetryPolicy
from tests.kit.notify import HANG, Answer, RecordingReceiver, stub_client

URL = "http://hooks.example/services/T000/B000/SECRET"


def make(answers: list[Answer], tries: int = 5, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    clock = Clock()
    receiver = RecordingReceiver(answers, clock.seconds)
    client, stub = stub_client(receiver)
    policy = RetryPolicy(tries=tries, initial=1.0, factor=2.0, max_delay=60.0)
    sender = Sender(clock, client, policy, timeout)
    return clock, receiver, stub, sender


DELIVERY = Delivery("webhook", URL, b'{"ok":true}', "backups/db", "t-1")


def sent_results(d):  # type: ignore[no-untyped-def]
    results: list[object] = []
    d.addBoth(results.append)
    return results


def test_success_on_first_try(logged: list[LogEvent]) -> None:
    clock, receiver, stub, sender = make([202])
    results = sent_results(sender.send(DELIVERY))
    stub.flush()
    assert results == [True]
    assert len(receiver.received) == 1
    got = receiver.received[0]
    assert got.method == "POST"
    assert got.path == "/services/T000/B000/SECRET"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"].startswith("hoodypipe/")
    assert got.body == b'{"ok":true}'


def test_500_twice_then_202_is_three_tries_with_backoff(
    logged: list[LogEvent],
) -> None:
    clock, receiver, stub, sender = make([500, 500, 202])
    results = sent_results(sender.send(DELIVERY))
    assert [r.at for r in receiver.received] == [0.0]
    clock.advance(1.0)
    assert [r.at for r in receiver.received] == [0.0, 1.0]
    clock.advance(1.9)
    assert len(receiver.received) == 2
    clock.advance(0.1)
    assert [r.at for r in receiver.received] == [0.0, 1.0, 3.0]
    assert results == [True]
    warnings = [formatEvent(e) for e in logged if "try" in formatEvent(e)]
    assert any("HTTP 500" in w and "retrying in 1.0s" in w for w in warnings)
    assert any("HTTP 500" in w and "retrying in 2.0s" in w for w in warnings)


def test_gives_up_after_the_tries(logged: list[LogEvent]) -> None:
    clock, receiver, stub, sender = make([503], tries=3)
    results = sent_results(sender.send(DELIVERY))
    clock.pump([1.0] * 10)
    assert len(receiver.received) == 3
    assert results == [False]
    last = [e for e in logged if e.get("why")][-1]
    assert last["reason"].startswith("HTTP 503")
    assert last["why"] == "no tries left"
    assert last["kind"] == "webhook"
    assert last["pipe"] == "backups/db"
    assert last["transfer_id"] == "t-1"
    # The secret part of a webhook URL never reaches the log.
    assert "SECRET" not in formatEvent(last)
    assert last["where"] == "http://hooks.example/…"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_other_4xx_is_not_retried(status: int, logged: list[LogEvent]) -> None:
    clock, receiver, stub, sender = make([status, 202])
    results = sent_results(sender.send(DELIVERY))
    clock.pump([1.0] * 70)
    assert len(receiver.received) == 1
    assert results == [False]
    assert any(e.get("why") == "not retryable" for e in logged)


def test_429_retry_after_is_honoured() -> None:
    clock, receiver, stub, sender = make([(429, {"Retry-After": "7"}), 202])
    results = sent_results(sender.send(DELIVERY))
    clock.advance(6.9)
    assert len(receiver.received) == 1
    clock.advance(0.1)
    assert [r.at for r in receiver.received] == [0.0, 7.0]
    assert results == [True]


def test_503_retry_after_date_is_honoured() -> None:
    clock, receiver, stub, sender = make(
        [(503, {"Retry-After": "Thu, 01 Jan 1970 00:00:30 GMT"}), 202]
    )
    clock.advance(10)  # the Clock's "now" is 10 s after the epoch
    results = sent_results(sender.send(DELIVERY))
    clock.advance(19.9)
    assert len(receiver.received) == 1
    clock.advance(0.1)
    assert [r.at for r in receiver.received] == [10.0, 30.0]
    assert results == [True]


def test_a_hanging_receiver_is_cut_by_the_timeout(logged: list[LogEvent]) -> None:
    clock, receiver, stub, sender = make([HANG, HANG, 202], timeout=5.0)
    results = sent_results(sender.send(DELIVERY))
    clock.advance(4.9)
    stub.flush()
    assert results == [] and len(receiver.received) == 1
    clock.advance(0.1)  # timeout -> try 1 cut; retry in 1 s
    stub.flush()
    assert any(e.get("reason") == "timed out" for e in logged)
    clock.advance(1.0)
    assert len(receiver.received) == 2
    clock.advance(5.0)  # cut again; retry in 2 s
    clock.advance(2.0)
    stub.flush()
    assert [r.at for r in receiver.received] == [0.0, 6.0, 13.0]
    assert results == [True]


def test_cancel_stops_a_delivery_between_tries() -> None:
    clock, receiver, stub, sender = make([500])
    d = sender.send(DELIVERY)
    results = sent_results(d)
    d.cancel()
    clock.pump([1.0] * 100)
    assert len(receiver.received) == 1
    assert len(results) == 1
    assert isinstance(results[0], object)
    assert results[0].check(CancelledError)  # type: ignore[attr-defined]


def test_redact_url() -> None:
    assert redact_url("https://hooks.slack.com/services/T/B/x") == (
        "https://hooks.slack.com/…"
    )
    assert redact_url("http://127.0.0.1:8080/hook?token=1") == "http://127.0.0.1:8080/…"
    assert redact_url("http://[::1:80/") == "<unparsable URL>"


def test_describe_error() -> None:
    assert describe_error(ValueError("x")) == "ValueError: x"
    assert describe_error(ValueError()) == "ValueError"


def test_cancel_stops_a_delivery_in_the_middle_of_a_try() -> None:
    clock, receiver, stub, sender = make([HANG, 202])
    d = sender.send(DELIVERY)
    results = sent_results(d)
    stub.flush()
    assert len(receiver.received) == 1
    d.cancel()
    clock.pump([1.0] * 100)
    stub.flush()
    assert len(receiver.received) == 1
    assert len(results) == 1
    assert results[0].check(CancelledError)  # type: ignore[attr-defined]
