"""
``hoodypipe watch``: follow one pipe's spectator feed until its transfer ends.

Anyone with the pipe's URL can do this; it reads the same ``?progress``
server-sent events as the dashboard, never claims a receiver slot, and ends
with the transfer's outcome as its exit status (0 complete, 1 failed, 2 when
the feed could not be reached or read, after its retries).

:class:`Watcher` connects, reconnects with ``Last-Event-ID`` after a
dropped connection, and stops on ``done`` (the server follows it with the
final ``state``, which the watch has no need to wait for) or on ``204 No
Content``. Parsing the stream is :mod:`hoodypipe.client.sse`, showing it
:mod:`hoodypipe.client.display`, acting on the outcome
:mod:`hoodypipe.client.outcome`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from hyperlink import DecodedURL
from twisted.internet.defer import CancelledError, Deferred, TimeoutError
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone

from hoodypipe import __version__
from hoodypipe.client.display import Display
from hoodypipe.client.sse import FeedError, SSEEvent, SSEParser, parse_data
from hoodypipe.common.delivery import describe_error
from hoodypipe.common.http import HTTPClientLike
from hoodypipe.common.pagerduty import is_complete
from hoodypipe.common.urls import PIPE_PREFIX

EXIT_COMPLETE = 0
EXIT_FAILED = 1
EXIT_UNREACHABLE = 2


# -- URLs -----------------------------------------------------------------


def feed_url(url: str) -> str:
    """The pipe URL with ``progress`` in its query (added bare when missing)."""
    parsed = DecodedURL.from_text(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"not an http(s) URL: {url!r}")
    if not any(name == "progress" for name, _ in parsed.query):
        parsed = parsed.add("progress", None)
    return str(parsed.to_uri().to_text())


def pipe_name(url: str) -> str:
    """``http://h/api/v1/pipe/a/b?progress`` -> ``a/b`` (also the bare ``/a/b``)."""
    path = "/" + "/".join(DecodedURL.from_text(url).path)
    if path.startswith(PIPE_PREFIX):
        return path[len(PIPE_PREFIX) :]
    return path.lstrip("/")


def server_base(url: str) -> str:
    """``http://h:1/api/v1/pipe/a?progress`` -> ``http://h:1``."""
    parsed = DecodedURL.from_text(url)
    return str(parsed.replace(path=(), query=(), fragment="").to_text()).rstrip("/")


# -- the watcher ------------------------------------------------------------


@attrs.frozen
class WatchResult:
    code: int
    done: dict[str, Any] | None = None
    why: str = ""


@attrs.frozen
class _Attempt:
    """How one connection ended."""

    kind: str  # "done", "gone" (204), "dropped", "fatal"
    why: str = ""
    saw_events: bool = False


class _FeedReader(Protocol):
    """The response body of one connection, fed to the parser as it comes."""

    def __init__(
        self,
        clock: IReactorTime,
        parser: SSEParser,
        on_event: Callable[[SSEEvent], bool],
        idle_timeout: float,
    ) -> None:
        self._clock = clock
        self._parser = parser
        self._on_event = on_event
        self._idle_timeout = idle_timeout
        self._idle: IDelayedCall | None = None
        self.finished: Deferred[_Attempt] = Deferred(lambda _: self._stop())
        self.saw_events = False

    def connectionMade(self) -> None:
        self._arm()

    def _arm(self) -> None:
        if self._idle is not None and self._idle.active():
            self._idle.reset(self._idle_timeout)
        else:
            self._idle = self._clock.callLater(
                self._idle_timeout, self._went_quiet
            )

    def _disarm(self) -> None:
        if self._idle is not None and self._idle.active():
            self._idle.cancel()
        self._idle = None

    def _stop(self) -> None:
        self._disarm()
        if self.transport is not None:
            self.transport.stopProducing()  # type: ignore[attr-defined]

    def _end(self, attempt: _Attempt) -> None:
        if not self.finished.called:
            self.finished.callback(attempt)
        self._stop()

    def _went_quiet(self) -> None:
        self._idle = None
        self._end(
            _Attempt(
                "dropped", f"nothing received for {self._idle_timeout:g}s",
                self.saw_events,
            )
        )

    def dataReceived(self, data: bytes) -> None:
        if self.finished.called:
            return
        self._arm()
        try:
            events = self._parser.feed(data)
        except FeedError as e:
            self._end(_Attempt("fatal", str(e), self.saw_events))
            return
        for event in events:
            self.saw_events = True
            try:
                finished = self._on_event(event)
            except FeedError as e:
                self._end(_Attempt("fatal", str(e), True))
                return
            if finished:
                self._end(_Attempt("done", saw_events=True))
                return

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._disarm()
        if self.finished.called:
            return
        value = reason.value
        if isinstance(value, ResponseDone):
            why = "the server ended the stream"
        else:
            why = describe_error(value) if isinstance(value, BaseException) else "?"
        self.finished.callback(_Attempt("dropped", why, self.saw_events))


class Watcher:
    """
    Follows one feed to its ``done``: reconnects after a dropped connection
    (sending ``Last-Event-ID``, waiting the server's ``retry:`` hint or
    ``delay``, doubling up to ``max_delay``), gives up after ``tries``
    connections in a row that brought no event, and stops for good on
    ``204``, on any other 4xx, or on a body that is not an event stream.
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        client: HTTPClientLike,
        url: str,
        display: Display,
        *,
        tries: int = 10,
        delay: float = 3.0,
        max_delay: float = 30.0,
        idle_timeout: float = 45.0,
        connect_timeout: float = 30.0,
    ) -> None:
        self._clock = clock
        self._client = client
        self.url = feed_url(url)
        self.name = pipe_name(url)
        self._display = display
        self._tries = tries
        self._delay = delay
        self._max_delay = max_delay
        self._idle_timeout = idle_timeout
        self._connect_timeout = connect_timeout
        self.last_event_id: str | None = None
        self.retry_ms: int | None = None
        self.connections = 0
        self._done: dict[str, Any] | None = None

    def run(self) -> Deferred[WatchResult]:
        return Deferred.fromCoroutine(self._run())

    async def _run(self) -> WatchResult:
        fruitless = 0
        while True:
            attempt = await self._connect_once()
            if attempt.kind == "done":
                assert self._done is not None
                code = EXIT_COMPLETE if is_complete(self._done) else EXIT_FAILED
                self._display.done(self.name, self._done)
                return WatchResult(code, self._done)
            if attempt.kind == "gone":
                why = "the server has nothing more for this feed (204)"
                self._display.notice(f"{why}, and no done event was seen")
                return WatchResult(EXIT_UNREACHABLE, None, why)
            if attempt.kind == "fatal":
                self._display.notice(f"cannot read the feed: {attempt.why}")
                return WatchResult(EXIT_UNREACHABLE, None, attempt.why)
            fruitless = 1 if attempt.saw_events else fruitless + 1
            if fruitless >= self._tries:
                self._display.notice(
                    f"giving up after {fruitless} tries: {attempt.why}"
                )
                return WatchResult(EXIT_UNREACHABLE, None, attempt.why)
            wait = self.reconnect_delay(fruitless)
            what = "feed interrupted" if attempt.saw_events else "no feed"
            self._display.notice(
                f"{what} ({attempt.why}); reconnecting in "
                f"{wait:g}s (try {fruitless + 1}/{self._tries})"
            )
            await deferLater(self._clock, wait)

    def reconnect_delay(self, fruitless: int) -> float:
        base = self.retry_ms / 1000 if self.retry_ms is not None else self._delay
        return float(min(self._max_delay, base * 2 ** min(fruitless - 1, 32)))

    def _headers(self) -> dict[bytes, list[bytes]]:
        headers = {
            b"Accept": [b"text/event-stream"],
            b"Cache-Control": [b"no-cache"],
            b"User-Agent": [f"hoodypipe-watch/{__version__}".encode()],
        }
        if self.last_event_id:
            headers[b"Last-Event-ID"] = [self.last_event_id.encode("utf-8")]
        return headers

    async def _connect_once(self) -> _Attempt:
        self.connections += 1
        request = self._client.request(
            "GET", self.url, headers=self._headers(), unbuffered=True
        )
        request.addTimeout(self._connect_timeout, self._clock)
        try:
            response = await request
        except CancelledError:
            raise
        except TimeoutError:
            return _Attempt("dropped", f"no answer within {self._connect_timeout:g}s")
        except Exception as e:
            return _Attempt("dropped", describe_error(e))
        code = int(response.code)
        if code == 204:
            return _Attempt("gone")
        if code != 200:
            response.deliverBody(Protocol())
            kind = "dropped" if code == 429 or code >= 500 else "fatal"
            return _Attempt(kind, f"HTTP {code} {response.phrase.decode('latin-1')}")
        content_types: list[str] = response.headers.getRawHeaders(
            "content-type"
        ) or [""]
        media = content_types[0].split(";")[0].strip().lower()
        if media != "text/event-stream":
            response.deliverBody(Protocol())
            shown = content_types[0] or "none"
            return _Attempt("fatal", f"not an event stream (Content-Type: {shown})")
        parser = SSEParser(self.last_event_id)
        reader = _FeedReader(self._clock, parser, self._handle, self._idle_timeout)
        response.deliverBody(reader)
        attempt = await reader.finished
        self.last_event_id = parser.last_event_id
        if parser.retry_ms is not None:
            self.retry_ms = parser.retry_ms
        return attempt

    def _handle(self, event: SSEEvent) -> bool:
        """Show one event; ``True`` when it is the ``done`` that ends the watch."""
        self.last_event_id = event.id
        data = parse_data(event)
        self._display.event(event, data)
        if event.event != "done":
            return False
        if not isinstance(data, dict):
            shown = event.data[:100]
            raise FeedError(f"the done event is not a JSON object: {shown!r}")
        self._done = data
        return True
