"""Assemble one hoodypipe server: registry, web routes, site, and its services."""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

from twisted.application.service import MultiService
from twisted.internet.interfaces import IReactorTime
from twisted.web.server import Request

from hoodypipe.bytepath import dispatch, sockets
from hoodypipe.bytepath.guard import check_twisted
from hoodypipe.bytepath.hasher import HashPool, HashRunner
from hoodypipe.bytepath.request import RelayRequest
from hoodypipe.bytepath.site import RelaySite
from hoodypipe.common.http import make_http_client
from hoodypipe.core.errors import Refusal
from hoodypipe.core.registry import PipeRegistry
from hoodypipe.listeners import connection_cap, open_file_limit
from hoodypipe.notify.notifier import Notifier
from hoodypipe.ops.memory import IdleTrimmer, tune_malloc
from hoodypipe.ops.metrics import Metrics
from hoodypipe.ops.translog import RequestLog, TransferLog
from hoodypipe.settings import Settings
from hoodypipe.spectators import SpectatorObserver, SpectatorResource
from hoodypipe.spectators.history import LastTransfers
from hoodypipe.spectators.store import ResultStore
from hoodypipe.web.routes import PipeServer


class HoodypipeService(MultiService):
    """The server's state and site; listeners are added by the tap.

    Its children are the worker threads (the ``?sha256`` hasher, the results
    store): they start with it and stop after the drain.
    """

    def __init__(
        self, reactor: Any, settings: Settings, hashing: HashRunner | None = None
    ) -> None:
        super().__init__()
        self.reactor = reactor
        self.settings = settings
        self.registry = PipeRegistry(reactor, settings)
        if hashing is None:
            pool = HashPool(reactor)
            pool.setServiceParent(self)
            hashing = pool
        self.results: ResultStore | None = None
        if settings.state_dir is not None:
            self.results = ResultStore(
                reactor, reactor, settings.state_dir,
                settings.last_transfer_ttl, settings.last_transfer_max)
            self.results.setServiceParent(self)
        self.last_transfers = LastTransfers(
            settings.last_transfer_ttl, settings.last_transfer_max, self.results)
        self.spectators = SpectatorObserver(reactor, self.registry, settings,
                                            last_transfers=self.last_transfers)
        self.metrics = Metrics(
            self.registry, spectators=lambda: self.spectators.spectators)
        self.registry.add_observer(self.metrics)
        self.registry.add_observer(TransferLog())
        self.trimmer = IdleTrimmer(reactor, self.registry.active_count)
        self.registry.add_observer(self.trimmer)
        self.requests = RequestLog()
        if settings.on_done or settings.pagerduty_routing_key:
            self.notifier = Notifier(reactor, settings,
                                     make_http_client(reactor, settings.hook_timeout))
            self.registry.add_observer(self.notifier)
        self.web = PipeServer(
            reactor, settings, self.registry,
            spectators=SpectatorResource(reactor, self.spectators, settings),
            metrics=self.scrape,
            on_refusal=self.refused,
            hashing=hashing,
        )
        self.site = make_site(self.web, reactor, settings, self.channel_refused)

    def startService(self) -> None:
        """Read the kept results back before any listener opens."""
        if self.results is not None:
            now = self.reactor.seconds()
            self.last_transfers.restore(self.results.load(now), now)
        super().startService()

    def stopService(self) -> Any:
        """After the drain: end the spectators' streams cleanly, not by a cut."""
        self.spectators.stop()
        self.trimmer.stop()
        return super().stopService()

    def scrape(self) -> tuple[bytes, bytes]:
        return self.metrics.render(), self.metrics.content_type.encode("ascii")

    def refused(self, request: Request, refusal: Refusal) -> None:
        self.metrics.rejected(refusal.code)
        self.requests.rejected(
            request.method.decode("latin-1"), request.path.decode("latin-1"),
            refusal.status, refusal.code)

    def channel_refused(self, status: int, code: str) -> None:
        """Refusals the connection makes before any route sees a request."""
        self.metrics.rejected(code)


def make_site(
    web: PipeServer, reactor: IReactorTime, settings: Settings,
    on_refusal: Callable[[int, str], None] | None = None,
) -> RelaySite:
    """The site every listener serves; fails at once on a Twisted it cannot run on."""
    check_twisted()

    class Request(RelayRequest):
        read_size = settings.read_size

    site = RelaySite(
        web.resource(), Request, reactor,
        timeout=settings.connection_timeout,
        head_timeout=settings.head_timeout,
        max_connections=connection_cap(settings.max_connections, open_file_limit()),
        on_refusal=on_refusal,
    )
    site.access_log = settings.access_log
    return site


def freeze_startup_heap() -> None:
    """Keep what start-up built (modules, routes, the service) out of full collections.

    Each transfer leaves a few hundred objects in reference cycles, so the
    collector runs often, and every full collection walked the whole start-up
    heap again (about 60,000 objects), a pause of tens of milliseconds on a
    busy machine. Collect first, so no start-up garbage is frozen with it.
    """
    gc.collect()
    gc.freeze()


def build_app(reactor: Any, settings: Settings) -> HoodypipeService:
    tune_malloc()
    sockets.check_at_startup()
    dispatch.use_lean_dispatch(reactor)
    app = HoodypipeService(reactor, settings)
    freeze_startup_heap()
    return app
