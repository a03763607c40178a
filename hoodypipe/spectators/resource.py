"""
The HTTP face of the spectators: ``?progress`` and ``?status`` requests in,
snapshots, dashboard pages and event streams out.

Which representation a request gets is decided here (``?status``, then
Accept); who may watch, and what a stream starts with, is the observer's
call (:meth:`~hoodypipe.spectators.observer.SpectatorObserver.add`).  A
refusal is raised as a :class:`~hoodypipe.core.errors.Refusal`, so the web
layer words and counts it like every other refusal (status line with its
reason phrase, ``[ERROR]`` body, the refusal metric, the request log).
"""

from __future__ import annotations

import json
from typing import Union

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from hoodypipe.core.errors import Refusal
from hoodypipe.settings import Settings
from hoodypipe.spectators import dashboard, sse
from hoodypipe.spectators.feed import SpectatorFeed, SpectatorRequest
from hoodypipe.spectators.observer import Crowded, SpectatorObserver
from hoodypipe.web import negotiation
from hoodypipe.web.names import parse_query


def crowded_refusal(crowded: Crowded) -> Refusal:
    """The 429 a spectator gets when a cap is reached."""
    if crowded.limit == Crowded.PATHS:
        return Refusal(
            429, f"Too many watched pipes (max {crowded.maximum}).", "watched_paths"
        )
    return Refusal(
        429, f"Too many spectators on this pipe (max {crowded.maximum}).", "spectators"
    )


class SpectatorResource:
    """Serves ``?progress`` and ``?status`` of one server's pipes."""

    def __init__(
        self,
        clock: IReactorTime,
        observer: SpectatorObserver,
        settings: Settings,
        *,
        stall_timeout: float | None = None,
        max_queue: int = 32,
        send_buffer: int = 64 * 1024,
    ) -> None:
        self._clock = clock
        self._observer = observer
        self._settings = settings
        self._stall_timeout = (
            stall_timeout
            if stall_timeout is not None
            else max(1.0, 2 * settings.heartbeat_interval)
        )
        self._max_queue = max_queue
        self._send_buffer = send_buffer

    def serve(
        self, request: SpectatorRequest, name: str
    ) -> Union[bytes, Deferred[None]]:
        """
        Answer a GET or HEAD with ``?progress`` or ``?status`` on pipe ``name``.

        Returns a complete small body, or (for an event stream) a Deferred
        that fires once the response is over.  Raises :class:`Refusal` when
        the spectator is not admitted.
        """
        if b"status" in parse_query(request.uri.partition(b"?")[2]):
            return self._serve_snapshot(request, name)
        accept = request.requestHeaders.getRawHeaders(b"accept")
        kind = negotiation.negotiate(
            ", ".join(v.decode("latin-1") for v in accept) if accept else None
        )
        if kind == negotiation.HTML:
            return self._serve_dashboard(request, name)
        if kind == negotiation.JSON:
            return self._serve_snapshot(request, name)
        return self._serve_stream(request, name)

    # -- responses -----------------------------------------------------------

    def _small(
        self,
        request: SpectatorRequest,
        content_type: bytes,
        body: bytes,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> bytes:
        request.setResponseCode(200)
        request.setHeader(b"Content-Type", content_type)
        request.setHeader(b"Content-Length", b"%d" % len(body))
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        for header, value in headers:
            request.setHeader(header, value)
        return body

    def _serve_snapshot(self, request: SpectatorRequest, name: str) -> bytes:
        body = json.dumps(self._observer.snapshot(name), separators=(",", ":")).encode()
        return self._small(
            request,
            b"application/json",
            body,
            ((b"Cache-Control", b"no-store"), (b"Access-Control-Allow-Origin", b"*")),
        )

    def _serve_dashboard(self, request: SpectatorRequest, name: str) -> bytes:
        page = dashboard.render(name)
        return self._small(request, b"text/html; charset=utf-8", page.body, page.headers)

    def _serve_stream(
        self, request: SpectatorRequest, name: str
    ) -> Union[bytes, Deferred[None]]:
        if request.method == b"HEAD":
            request.setResponseCode(200)
            for header, value in sse.HEADERS:
                request.setHeader(header, value)
            return b""
        sent = request.requestHeaders.getRawHeaders(b"last-event-id")
        last_seen = sse.parse_last_event_id(sent[-1] if sent else None)
        feed = self._feed(request, name)
        try:
            opening = self._observer.add(feed, last_seen)
        except Crowded as crowded:
            raise crowded_refusal(crowded) from None
        if opening is None:
            # The client has seen how the transfer ended: 204 stops EventSource.
            request.setResponseCode(204)
            request.setHeader(b"Cache-Control", b"no-cache")
            return b""
        return feed.start(list(opening.blocks), final=opening.final)

    def _feed(self, request: SpectatorRequest, name: str) -> SpectatorFeed:
        settings = self._settings
        observer = self._observer
        return SpectatorFeed(
            self._clock,
            request,
            name,
            heartbeat_interval=settings.heartbeat_interval,
            ttl=settings.spectator_ttl,
            stall_timeout=self._stall_timeout,
            max_queue=self._max_queue,
            send_buffer=self._send_buffer,
            latest_progress=lambda: observer.latest_progress(name),
            on_gone=observer.remove,
        )
