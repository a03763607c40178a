"""The retry schedule: which outcomes retry, how long between tries, Retry-After."""

from __future__ import annotations

import pytest

from hoodypipe.common.retry import Outcome, RetryPolicy, parse_retry_after

# Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110's example date)
EXAMPLE_DATE = 784111777.0


@pytest.mark.parametrize(
    ("outcome", "retryable"),
    [
        (Outcome(status=500), True),
        (Outcome(status=502), True),
        (Outcome(status=503), True),
        (Outcome(status=599), True),
        (Outcome(status=429), True),
        (Outcome(error="ConnectionRefusedError"), True),
        (Outcome(timed_out=True), True),
        (Outcome(status=400), False),
        (Outcome(status=401), False),
        (Outcome(status=403), False),
        (Outcome(status=404), False),
        (Outcome(status=410), False),
        (Outcome(status=413), False),
        (Outcome(status=301), False),
    ],
)
def test_what_retries(outcome: Outcome, retryable: bool) -> None:
    assert outcome.retryable is retryable
    assert not outcome.ok


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_success(status: int) -> None:
    assert Outcome(status=status).ok
    assert RetryPolicy().next_delay(1, Outcome(status=status), 0.0) is None


def test_reasons_read_well() -> None:
    assert Outcome(timed_out=True).reason == "timed out"
    assert Outcome(error="ConnectionRefusedError").reason == "ConnectionRefusedError"
    assert Outcome(status=503, detail="busy").reason == "HTTP 503: busy"
    assert Outcome(status=404).reason == "HTTP 404"


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(tries=20, initial=1.0, factor=2.0, max_delay=60.0)
    assert [policy.backoff(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert policy.backoff(10_000) == 60.0


def test_bounded_tries() -> None:
    policy = RetryPolicy(tries=3, initial=0.5)
    failure = Outcome(status=500)
    assert policy.next_delay(1, failure, 0.0) == 0.5
    assert policy.next_delay(2, failure, 0.0) == 1.0
    assert policy.next_delay(3, failure, 0.0) is None


def test_no_retry_on_other_4xx() -> None:
    assert RetryPolicy().next_delay(1, Outcome(status=404), 0.0) is None
    assert RetryPolicy().next_delay(1, Outcome(status=400), 0.0) is None


def test_retry_after_seconds_replaces_the_backoff() -> None:
    policy = RetryPolicy(tries=5, initial=1.0)
    assert policy.next_delay(1, Outcome(status=429, retry_after="7"), 0.0) == 7.0
    assert policy.next_delay(1, Outcome(status=503, retry_after=" 0 "), 0.0) == 0.0


def test_retry_after_http_date() -> None:
    policy = RetryPolicy(tries=5)
    outcome = Outcome(status=503, retry_after="Sun, 06 Nov 1994 08:49:37 GMT")
    assert policy.next_delay(1, outcome, EXAMPLE_DATE - 12) == 12.0
    # A date already past means "now".
    assert policy.next_delay(1, outcome, EXAMPLE_DATE + 100) == 0.0


def test_retry_after_is_capped() -> None:
    policy = RetryPolicy(tries=5, max_retry_after=300.0)
    assert policy.next_delay(1, Outcome(status=429, retry_after="86400"), 0) == 300.0


def test_unreadable_retry_after_falls_back_to_backoff() -> None:
    policy = RetryPolicy(tries=5, initial=2.0)
    for junk in ["soon", "-5", "1.5", "", "Sun, 99 Foo 1994", "٣"]:
        assert policy.next_delay(1, Outcome(status=503, retry_after=junk), 0.0) == 2.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("Sun, 06 Nov 1994 08:49:37 GMT", 37.0),
        ("Sunday, 06-Nov-94 08:49:37 GMT", 37.0),
        ("Sun Nov  6 08:49:37 1994", 37.0),
        (None, None),
        ("", None),
        ("later", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, EXAMPLE_DATE - 37) == expected


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(tries=0)
    with pytest.raises(ValueError):
        RetryPolicy(factor=0.5)
