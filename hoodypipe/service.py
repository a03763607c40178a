"""Assemble one hoodypipe server: registry, web routes, site, and its services."""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any

from twisted.application.service import MultiService
from twisted.internet.interfaces import IReactorTime
from twisted.web.server import Request, Site

from hoodypipe.bytepath.request import RelayRequest
from hoodypipe.common.http import make_http_client
from hoodypipe.core.errors import Refusal
from hoodypipe.core.registry import PipeRegistry
from hoodypipe.notify.notifier import Notifier
from hoodypipe.ops.metrics import Metrics
from hoodypipe.ops.translog import RequestLog, TransferLog
from hoodypipe.settings import Settings
from hoodypipe.spectators import SpectatorObserver, SpectatorResource
from hoodypipe.web.routes import PipeServer

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_malloc() -> bool:
    """Keep big socket reads out of mmap (glibc): avoids a page-fault storm.

    Measured in BYTEPATH.md: large recv buffers are 2-3x slower without it.
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 4 * 1024 * 1024)) and bool(
        mallopt(_M_TRIM_THRESHOLD, 128 * 1024 * 1024))


class HoodypipeService(MultiService):
    """The server's state and site; listeners are added by the tap."""

    def __init__(self, reactor: Any, settings: Settings) -> None:
        super().__init__()
        self.reactor = reactor
        self.settings = settings
        self.registry = PipeRegistry(reactor, settings)
        self.spectators = SpectatorObserver(reactor, self.registry, settings)
        self.metrics = Metrics(
            self.registry, spectators=lambda: self.spectators.spectators)
        self.registry.add_observer(self.metrics)
        self.registry.add_observer(TransferLog())
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
        )
        self.site = make_site(self.web, reactor, settings)

    def stopService(self) -> Any:
        """After the drain: end the spectators' streams cleanly, not by a cut."""
        self.spectators.stop()
        return super().stopService()

    def scrape(self) -> tuple[bytes, bytes]:
        return self.metrics.render(), self.metrics.content_type.encode("ascii")

    def refused(self, request: Request, refusal: Refusal) -> None:
        self.metrics.rejected(refusal.code)
        self.requests.rejected(
            request.method.decode("latin-1"), request.path.decode("latin-1"),
            refusal.status, refusal.code)


def make_site(web: PipeServer, reactor: IReactorTime, settings: Settings) -> Site:
    class Request(RelayRequest):
        read_size = settings.read_size

    site = Site(web.resource(), requestFactory=Request, reactor=reactor,
                timeout=settings.connection_timeout)
    site.displayTracebacks = False
    return site


def build_app(reactor: Any, settings: Settings) -> HoodypipeService:
    tune_malloc()
    return HoodypipeService(reactor, settings)
