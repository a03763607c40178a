"""
Sending one JSON body to one URL: a timed try, and the retries around it.

Shared by the server's notifier and ``hoodypipe watch`` (its PagerDuty
event): nothing here knows about pipes or the server, only about delivering
a body to a receiver that may be slow, down or rate-limiting.

Each try is cut by a timer on the reactor (``Deferred.addTimeout``, which
cancels the request or aborts the body being read). It covers connecting,
waiting for the response *and* reading its body, so a receiver that
accepts the connection and then says nothing cannot hold a delivery open.
Between tries the schedule comes from
:class:`~hoodypipe.common.retry.RetryPolicy`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import attrs
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ConnectingCancelledError
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone, ResponseFailed, ResponseNeverReceived
from twisted.web.http import PotentialDataLoss

from hoodypipe import __version__
from hoodypipe.common.http import HTTPClientLike
from hoodypipe.common.retry import Outcome, RetryPolicy

USER_AGENT = f"hoodypipe/{__version__}".encode("ascii")
_DETAIL_LIMIT = 200


@attrs.frozen
class Delivery:
    """One JSON body bound for one URL, with what the logs should name."""

    kind: str
    url: str
    body: bytes
    pipe: str
    transfer_id: str | None


def redact_url(url: str) -> str:
    """
    The URL as logs may show it: scheme, host and port only. Webhook URLs
    often carry their secret in the path (Slack's do), and logs travel.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparsable URL>"
    return f"{parts.scheme}://{host}{port}/…"


def describe_error(error: BaseException) -> str:
    """A short, stable phrase for why a request got no response."""
    if isinstance(error, (ResponseNeverReceived, ResponseFailed)) and error.reasons:
        inner = error.reasons[0]
        if isinstance(inner, Failure) and isinstance(inner.value, BaseException):
            return describe_error(inner.value)
    name = type(error).__name__
    message = str(error).strip()
    return f"{name}: {message}" if message and message != name else name


def is_cancellation(error: BaseException) -> bool:
    """Whether a request failed because we cancelled it (timeout, shutdown)."""
    if isinstance(error, (CancelledError, ConnectingCancelledError)):
        return True
    if isinstance(error, (ResponseNeverReceived, ResponseFailed)):
        return any(
            isinstance(reason, Failure) and isinstance(reason.value, CancelledError)
            for reason in error.reasons
        )
    return False


class _Drain(Protocol):
    """Reads a response body to the end, keeping only its first bytes."""

    def __init__(self, limit: int) -> None:
        self.finished: Deferred[bytes] = Deferred(lambda _: self.abort())
        self._limit = limit
        self._kept = bytearray()
        self._done = False

    def dataReceived(self, data: bytes) -> None:
        room = self._limit - len(self._kept)
        if room > 0:
            self._kept += data[:room]

    def abort(self) -> None:
        if self.transport is not None and not self._done:
            self.transport.stopProducing()  # type: ignore[attr-defined]

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._done = True
        if self.finished.called:
            return
        if isinstance(reason.value, (ResponseDone, PotentialDataLoss)):
            self.finished.callback(bytes(self._kept))
        else:
            self.finished.errback(reason)


class Sender:
    """
    Delivers :class:`Delivery` values with bounded, spaced-out retries.

    :meth:`send` returns at once; the Deferred it gives fires with ``True``
    (delivered) or ``False`` (given up) and never fails, except with
    ``CancelledError`` when the caller cancels it (shutdown).
    """

    log = Logger()

    def __init__(
        self,
        reactor: IReactorTime,
        client: HTTPClientLike,
        policy: RetryPolicy,
        timeout: float,
    ) -> None:
        self._reactor = reactor
        self._client = client
        self._policy = policy
        self._timeout = timeout

    def send(self, delivery: Delivery) -> Deferred[bool]:
        return Deferred.fromCoroutine(self._send(delivery))

    async def _send(self, delivery: Delivery) -> bool:
        tries = self._policy.tries
        where = redact_url(delivery.url)
        for attempt in range(1, tries + 1):
            outcome = await self.try_once(delivery)
            if outcome.ok:
                self.log.info(
                    "{kind} for pipe {pipe!r} (transfer {transfer_id}) delivered to "
                    "{where}: HTTP {status} on try {attempt}",
                    kind=delivery.kind, pipe=delivery.pipe,
                    transfer_id=delivery.transfer_id, where=where,
                    status=outcome.status, attempt=attempt,
                )
                return True
            delay = self._policy.next_delay(
                attempt, outcome, self._reactor.seconds()
            )
            if delay is None:
                why = "not retryable" if not outcome.retryable else "no tries left"
                self.log.warn(
                    "{kind} for pipe {pipe!r} (transfer {transfer_id}) to {where} "
                    "failed on try {attempt}/{tries}: {reason}; giving up ({why})",
                    kind=delivery.kind, pipe=delivery.pipe,
                    transfer_id=delivery.transfer_id, where=where, attempt=attempt,
                    tries=tries, reason=outcome.reason, status=outcome.status, why=why,
                )
                return False
            self.log.warn(
                "{kind} for pipe {pipe!r} (transfer {transfer_id}) to {where} failed "
                "on try {attempt}/{tries}: {reason}; retrying in {delay:.1f}s",
                kind=delivery.kind, pipe=delivery.pipe,
                transfer_id=delivery.transfer_id, where=where, attempt=attempt,
                tries=tries, reason=outcome.reason, status=outcome.status, delay=delay,
            )
            await deferLater(self._reactor, delay)
        raise AssertionError("unreachable: the last try always returns")

    async def try_once(self, delivery: Delivery) -> Outcome:
        """One POST, cut by the timeout wherever it is; never fails."""
        seen: list[Outcome] = []

        def timed_out(result: object, timeout: float) -> Outcome:
            if seen and seen[0].ok:
                # The answer was in; only the rest of its body was slow.
                return seen[0]
            return Outcome(timed_out=True)

        attempt = Deferred.fromCoroutine(self._post(delivery, seen))
        attempt.addTimeout(self._timeout, self._reactor, timed_out)
        return await attempt

    async def _post(self, delivery: Delivery, seen: list[Outcome]) -> Outcome:
        try:
            response = await self._client.request(
                "POST",
                delivery.url,
                data=delivery.body,
                headers={
                    b"Content-Type": [b"application/json"],
                    b"User-Agent": [USER_AGENT],
                },
                allow_redirects=False,
                unbuffered=True,
            )
        except Exception as e:
            if is_cancellation(e):
                raise CancelledError() from e
            return Outcome(error=describe_error(e))
        retry_after = response.headers.getRawHeaders("retry-after")
        answer = Outcome(
            status=int(response.code),
            retry_after=retry_after[0] if retry_after else None,
        )
        seen.append(answer)
        drain = _Drain(_DETAIL_LIMIT)
        response.deliverBody(drain)
        try:
            detail = await drain.finished
        except CancelledError:
            raise
        except Exception:
            # The status line arrived: that is the answer; a body cut short
            # changes nothing about it.
            return answer
        lines = detail.decode("utf-8", "replace").strip().splitlines()
        return attrs.evolve(answer, detail=lines[0][:_DETAIL_LIMIT] if lines else "")
