"""
When to try a notification again, and how long to wait first.

Pure values and functions, no I/O: the time is passed in, so the whole
schedule is tested with plain numbers and a ``Clock``.

What retries: no answer at all (connection refused or reset, DNS failure,
the per-request timeout), ``429 Too Many Requests`` and every ``5xx``.
What does not: any other status. A ``2xx`` is success; a ``3xx`` or another
``4xx`` means the request itself is wrong (bad URL, bad key, bad body), and
sending it again would only repeat the error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import attrs
from twisted.web import http

_http_date: Callable[[bytes], int] = cast(Callable[[bytes], int], http.stringToDatetime)


@attrs.frozen
class Outcome:
    """What one try of one request came to."""

    status: int | None = None
    """The HTTP status, when a response came back."""
    error: str | None = None
    """Why no response came back (connection error, timeout)."""
    timed_out: bool = False
    retry_after: str | None = None
    """The response's ``Retry-After`` header, verbatim."""
    detail: str = ""
    """The start of the response body, for the log."""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        if self.status is None:
            return True
        return self.status == 429 or 500 <= self.status <= 599

    @property
    def reason(self) -> str:
        """One short phrase for the log line."""
        if self.status is None:
            return "timed out" if self.timed_out else (self.error or "no response")
        text = f"HTTP {self.status}"
        if self.detail:
            text += f": {self.detail}"
        return text


def parse_retry_after(value: str | None, now: float) -> float | None:
    """
    Seconds to wait from a ``Retry-After`` value: either delay-seconds
    (``"120"``) or an HTTP date (``"Wed, 21 Oct 2015 07:28:00 GMT"``), read
    against ``now`` (seconds since the epoch). ``None`` when absent or
    unreadable, so the caller falls back to its own backoff.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return float(int(text))
    try:
        when = _http_date(text.encode("ascii"))
    except (ValueError, IndexError, KeyError, UnicodeEncodeError):
        return None
    return max(0.0, float(when) - now)


@attrs.frozen
class RetryPolicy:
    """
    Bounded tries with capped exponential backoff.

    The wait after try ``n`` (1-based) is ``initial * factor ** (n - 1)``,
    at most ``max_delay``; a ``Retry-After`` from the receiver replaces it,
    at most ``max_retry_after`` (a receiver cannot park a delivery for a day).
    """

    tries: int = 5
    initial: float = 1.0
    factor: float = 2.0
    max_delay: float = 60.0
    max_retry_after: float = 300.0

    def __attrs_post_init__(self) -> None:
        if self.tries < 1:
            raise ValueError("tries must be at least 1")
        if self.initial < 0 or self.factor < 1 or self.max_delay < 0:
            raise ValueError("delays must be non-negative and grow")

    def backoff(self, tries_done: int) -> float:
        """The wait after ``tries_done`` failed tries, without a Retry-After."""
        exponent = max(0, tries_done - 1)
        # Cap the exponent first so a large try count cannot overflow.
        delay = self.initial * self.factor ** min(exponent, 64)
        return float(min(self.max_delay, delay))

    def next_delay(
        self, tries_done: int, outcome: Outcome, now: float
    ) -> float | None:
        """
        Seconds to wait before the next try, or ``None`` when there is none:
        the outcome was a success, is not worth retrying, or the tries are
        used up.
        """
        if outcome.ok or not outcome.retryable or tries_done >= self.tries:
            return None
        hinted = parse_retry_after(outcome.retry_after, now)
        if hinted is not None:
            return min(self.max_retry_after, hinted)
        return self.backoff(tries_done)
