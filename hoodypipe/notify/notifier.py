"""
The server's notifier: an ``ITransferObserver`` that turns each finished
transfer into webhook and PagerDuty deliveries.

``transfer_done`` only builds the bodies and schedules the sends for the
next reactor turn, so it costs the byte path nothing and cannot raise into
it. Deliveries in flight (including those waiting between retries) are
capped: when a receiver is down and everything piles up behind its
timeouts, new deliveries beyond the cap are dropped with a log line rather
than held without bound.
"""

from __future__ import annotations

import socket

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger
from zope.interface import implementer

from hoodypipe.common.delivery import Delivery, Sender, redact_url
from hoodypipe.common.http import HTTPClientLike
from hoodypipe.common.jsonbody import encode_json
from hoodypipe.common.pagerduty import pagerduty_event
from hoodypipe.common.retry import RetryPolicy
from hoodypipe.common.wire import done_event
from hoodypipe.core.events import ITransferObserver, PipeStatus, TransferResult
from hoodypipe.notify.webhook import progress_url, wants_notification, webhook_body
from hoodypipe.settings import Settings

MAX_PENDING = 1000


@implementer(ITransferObserver)
class Notifier:
    """
    Sends ``--on-done`` webhooks and the PagerDuty event for every transfer
    that matches the filters. Where notifications go is server
    configuration only: nothing in a request can add or change a target.
    """

    log = Logger()

    def __init__(
        self,
        reactor: IReactorTime,
        settings: Settings,
        http_client: HTTPClientLike,
        *,
        max_pending: int = MAX_PENDING,
        hostname: str | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        self._reactor = reactor
        self._settings = settings
        self._max_pending = max_pending
        self._hostname = hostname or socket.gethostname()
        self._sender = Sender(
            reactor,
            http_client,
            policy or RetryPolicy(tries=settings.hook_retries),
            settings.hook_timeout,
        )
        self._pending: set[Deferred[bool]] = set()
        self.delivered = 0
        self.failed = 0
        self.dropped = 0

    @property
    def pending(self) -> int:
        """Deliveries started or waiting to retry."""
        return len(self._pending)

    def pipe_changed(self, status: PipeStatus) -> None:
        pass

    def transfer_done(self, result: TransferResult) -> None:
        try:
            deliveries = self.deliveries_for(result)
        except Exception:
            self.log.failure(
                "building notifications for pipe {pipe!r} failed", pipe=result.name
            )
            return
        for delivery in deliveries:
            self._launch(delivery)

    def deliveries_for(self, result: TransferResult) -> list[Delivery]:
        """Every request this transfer's end calls for (none when filtered)."""
        settings = self._settings
        if not wants_notification(settings, result):
            return []
        deliveries: list[Delivery] = []
        if settings.on_done:
            body = encode_json(webhook_body(result, settings.public_url))
            deliveries.extend(
                Delivery("webhook", url, body, result.name, result.transfer_id)
                for url in settings.on_done
            )
        if settings.pagerduty_routing_key:
            event = pagerduty_event(
                routing_key=settings.pagerduty_routing_key,
                name=result.name,
                done=done_event(result),
                source=settings.public_url or self._hostname,
                timestamp=self._reactor.seconds(),
                progress_url=progress_url(settings.public_url, result.name),
                client_url=settings.public_url,
            )
            deliveries.append(
                Delivery(
                    "pagerduty", settings.pagerduty_url, encode_json(event),
                    result.name, result.transfer_id,
                )
            )
        return deliveries

    def _launch(self, delivery: Delivery) -> None:
        if len(self._pending) >= self._max_pending:
            self.dropped += 1
            self.log.warn(
                "dropping {kind} for pipe {pipe!r} (transfer {transfer_id}) to "
                "{where}: {pending} notifications already in flight",
                kind=delivery.kind, pipe=delivery.pipe,
                transfer_id=delivery.transfer_id, where=redact_url(delivery.url),
                pending=len(self._pending),
            )
            return
        # Start on the next reactor turn: the caller is the transfer's own
        # code path, which must not wait for anything of ours.
        started: Deferred[bool] = deferLater(
            self._reactor, 0, lambda: None
        ).addCallback(lambda _: self._sender.send(delivery))
        self._pending.add(started)

        def finished(delivered: bool) -> None:
            self._pending.discard(started)
            if delivered:
                self.delivered += 1
            else:
                self.failed += 1

        def cancelled(failure: object) -> None:
            self._pending.discard(started)

        started.addCallbacks(finished, cancelled)

    def stop(self) -> None:
        """Abandon every delivery in flight (at shutdown)."""
        for pending in list(self._pending):
            pending.cancel()
