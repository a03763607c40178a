"""
The HTTP routes: reserved pages, and the pipe paths' methods.

Klein routes the request; every pipe route then reads the name from the raw
request path (``names``), so an encoded slash or a dot segment in a name is
refused (400) as it was sent, whatever the router would have decoded it to.
The registry decides who may join; ``wording`` says it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from klein import Klein
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from hoodypipe.bytepath.formrelay import FormRelay
from hoodypipe.bytepath.hasher import HashRunner
from hoodypipe.bytepath.multipart import PartHead, form_boundary
from hoodypipe.bytepath.relay import Relay
from hoodypipe.bytepath.request import RelayRequest
from hoodypipe.core.errors import Refusal
from hoodypipe.core.outcomes import Refused
from hoodypipe.core.registry import Pipe, PipeRegistry
from hoodypipe.ops.health import health_body, health_code
from hoodypipe.settings import Settings
from hoodypipe.web import disposition, pages, videopage, wording
from hoodypipe.web.flags import is_on
from hoodypipe.web.headers import content_length, receiver_headers
from hoodypipe.web.names import (
    RESERVED_API,
    check_host,
    check_target,
    parse_party,
    refuse_repeated,
    split_target,
    validate_name,
)
from hoodypipe.web.parties import (
    ReceiverParty,
    SenderParty,
    refuse_now,
    set_common_headers,
    write_refusal,
)
from hoodypipe.web.receiving import answer_receiver, part_headers, part_offer

PIPE_METHODS = b"GET, HEAD, POST, PUT, OPTIONS"
PAGE_METHODS = b"GET, HEAD, OPTIONS"
ALLOWED_REQUEST_HEADERS = (
    b"Content-Type, Content-Disposition, Content-Length, X-Piping, X-Hoody-Pipe, "
    b"Last-Event-ID, Accept"
)


class Spectators(Protocol):
    def serve(self, request: Request, name: str) -> Any: ...


class RejectionSink(Protocol):
    def __call__(self, request: Request, refusal: Refusal) -> None: ...


def until_done(request: Request) -> Deferred[None]:
    """A Deferred for Klein that fires once the response is over, however it ends."""
    done: Deferred[None] = Deferred(lambda d: None)

    def fire(_: object) -> None:
        if not done.called:
            done.callback(None)

    request.notifyFinish().addBoth(fire)
    return done


class PipeServer:
    """The web face of one PipeRegistry."""

    app = Klein()
    app.url_map.merge_slashes = False
    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        settings: Settings,
        registry: PipeRegistry,
        spectators: Spectators | None = None,
        metrics: Callable[[], tuple[bytes, bytes]] | None = None,
        on_refusal: RejectionSink | None = None,
        hashing: HashRunner | None = None,
    ) -> None:
        self.clock = clock
        self.settings = settings
        self.registry = registry
        self.spectators = spectators
        self.metrics = metrics
        self.on_refusal = on_refusal
        self.hashing = hashing
        self.started_at = clock.seconds()
        registry.set_transfer_starter(self.start_transfer)

    def resource(self) -> Resource:
        """The site's root: ``screen`` first, then Klein's routing."""
        return _Screened(self)

    # -- reserved pages -----------------------------------------------------

    @app.route("/api/v1/pipe/health", strict_slashes=False)
    def health_route(self, request: Request) -> Any:
        request.setHeader(b"Cache-Control", b"no-store")
        request.setResponseCode(health_code(self.registry))
        return self._page(request, self._health_page)

    def _health_page(self, request: Request) -> tuple[bytes, bytes]:
        body = health_body(self.registry, self.started_at, self.clock.seconds())
        return body, b"application/json"

    @app.route("/api/v1/pipe/metrics", strict_slashes=False)
    def metrics_route(self, request: Request) -> Any:
        return self._page(request, self._metrics_page)

    def _metrics_page(self, request: Request) -> tuple[bytes, bytes]:
        if self.metrics is None:
            raise Refusal(404, "Metrics are not enabled.", "not_found")
        return self.metrics()

    @app.route("/", strict_slashes=False)
    @app.route("/api/v1/pipe")
    def index_route(self, request: Request) -> Any:
        return self._page(request, pages.index)

    def _page(self, request: Request, page: Callable[[Request], tuple[bytes, bytes]]) -> Any:
        try:
            if request.method in (b"POST", b"PUT"):
                raise Refusal(400, "Cannot send to a reserved path.", "reserved")
            if request.method == b"OPTIONS":
                return self._preflight(request)
            if request.method not in (b"GET", b"HEAD"):
                raise _method_refusal(request, PAGE_METHODS)
            body, content_type = page(request)
        except Refusal as refusal:
            return self._refuse(request, refusal)
        request.setHeader(b"Content-Type", content_type)
        set_common_headers(request)
        return body

    # -- pipes --------------------------------------------------------------

    @app.route("/<path:ignored>")
    @app.route("/api/v1/pipe/<path:ignored>")
    def pipe_route(self, request: Request, ignored: str = "") -> Any:
        raw, under_api = split_target(request.path)
        try:
            page = pages.RESERVED.get(raw)
            if page is not None:
                return self._page(request, page)
            if under_api and raw.rstrip(b"/") in RESERVED_API:
                raise Refusal(404, "Not found.", "not_found")
            name = validate_name(raw)
            refuse_repeated(request.args)
            method = request.method
            if method in (b"POST", b"PUT"):
                return self._send(request, name)
            args = request.args
            watching = is_on(args, b"progress") or b"status" in args
            if method == b"GET":
                if watching:
                    return self._watch(request, name)
                if is_on(args, b"video") and videopage.wanted(request):
                    return self._page(request, videopage.serve)
                return self._receive(request, name)
            if method == b"HEAD" and b"status" in args:
                return self._watch(request, name)
            if method == b"OPTIONS":
                return self._preflight(request)
            raise _method_refusal(request, PIPE_METHODS)
        except Refusal as refusal:
            return self._refuse(request, refusal)

    def _send(self, request: Request, name: str) -> Any:
        assert isinstance(request, RelayRequest) and request.body is not None
        if request.getHeader(b"content-range") is not None:
            raise Refusal(400, "Content-Range is not supported on a send.", "bad_header")
        params = self._params(request)
        total = content_length(request.getHeader(b"content-length"))
        if request.body.chunked or _form_boundary(request) is not None:
            total = params.size
        sender = SenderParty(request)
        pipe = self.registry.join_sender(name, params.n, params.wait, sender, total)
        if isinstance(pipe, Refused):
            raise wording.refusal(pipe)
        request.notifyFinish().addErrback(self._gone, pipe, sender)
        return until_done(request)

    def _receive(self, request: Request, name: str) -> Any:
        params = self._params(request)
        receiver = ReceiverParty(request, self.on_refusal)
        pipe = self.registry.join_receiver(name, params.n, params.wait, receiver)
        if isinstance(pipe, Refused):
            raise wording.refusal(pipe)
        request.notifyFinish().addErrback(self._gone, pipe, receiver)
        return until_done(request)

    def _gone(self, reason: Failure, pipe: Pipe, handle: object) -> None:
        self.registry.leave(pipe, handle)

    def _watch(self, request: Request, name: str) -> Any:
        if self.spectators is None:
            raise Refusal(404, "Spectators are not enabled on this server.", "not_found")
        return self.spectators.serve(request, name)

    def _params(self, request: Request) -> Any:
        s = self.settings
        return parse_party(request.args, s.default_wait, s.max_wait, s.max_receivers)

    def _preflight(self, request: Request) -> bytes:
        request.setResponseCode(204)
        request.setHeader(b"Access-Control-Allow-Origin", b"*")
        request.setHeader(b"Access-Control-Allow-Methods", PIPE_METHODS)
        asked = request.getHeader(b"access-control-request-headers")
        request.setHeader(b"Access-Control-Allow-Headers", asked or ALLOWED_REQUEST_HEADERS)
        request.setHeader(b"Access-Control-Max-Age", b"86400")
        return b""

    def _refuse(self, request: Request, refusal: Refusal) -> Any:
        if self.on_refusal is not None:
            self.on_refusal(request, refusal)
        if isinstance(request, RelayRequest) and request.body is not None:
            refuse_now(request, refusal)
            return until_done(request)
        return write_refusal(request, refusal)

    # -- the moment a pipe is full -------------------------------------------

    def start_transfer(self, pipe: Pipe) -> Relay:
        assert pipe.sender is not None
        sender = pipe.sender.handle
        assert isinstance(sender, SenderParty)
        parties: dict[Request, ReceiverParty] = {}
        for party in pipe.receivers:
            assert isinstance(party.handle, ReceiverParty)
            parties[party.handle.request] = party.handle
        receivers = list(parties)
        headers = receiver_headers(sender.request.requestHeaders)
        ended: dict[str, Any] = dict(
            ended=self.registry.transfer_ended,
            receiver_left=self.registry.receiver_left,
            sender_status=sender.status,
            sender_end=sender.end,
            hashing=self._hashing_for(sender.request),
        )
        boundary = _form_boundary(sender.request)
        if boundary is None:
            offered = disposition.offered_by(_first(sender.request, b"content-disposition"))
            for request in receivers:
                answer_receiver(request, pipe.name, pipe.transfer_id, headers, offered)
            relay = Relay(pipe, sender.request, receivers, **ended)
        else:
            def answer(answered: list[Request], head: PartHead) -> None:
                forwarded, offered = part_headers(headers, head), part_offer(head)
                for request in answered:
                    answer_receiver(request, pipe.name, pipe.transfer_id, forwarded, offered)

            relay = FormRelay(
                pipe, sender.request, receivers, boundary=boundary, clock=self.clock,
                head_timeout=self.settings.form_head_timeout, answer=answer,
                refuse=lambda request: parties[request].answer_refusal(MALFORMED_FORM), **ended)
        relay.start()
        return relay

    def _hashing_for(self, request: Request) -> HashRunner | None:
        """``?sha256`` on the send: the worker that hashes it, else nothing."""
        return self.hashing if is_on(request.args, b"sha256") else None


def screen(request: Request) -> None:
    """What is refused on every path, whatever the method, before routing.

    A browser sends ``Service-Worker: script`` when it fetches the script of
    a service worker being registered; no worker may ever be registered on the
    relay's origin (it would answer for every path, for every later visitor),
    so that fetch is refused wherever it points.  So is a request whose
    target is not a path or whose Host is not a host: Klein would route the
    first to a wrong place and answer a non-UTF-8 one (or Host) itself.
    """
    check_target(request.path, request.method)
    check_host(request.requestHeaders.getRawHeaders(b"host"), request.clientproto)
    if request.requestHeaders.hasHeader(b"service-worker"):
        raise Refusal(400, "Service workers are not allowed on this server.", "bad_header")


class _Screened(Resource):
    """Every request passes ``screen`` before Klein routes it."""

    isLeaf = True

    def __init__(self, server: PipeServer) -> None:
        super().__init__()
        self._server = server
        self._routed = server.app.resource()

    def render(self, request: Request) -> Any:
        try:
            screen(request)
        except Refusal as refusal:
            answer = self._server._refuse(request, refusal)
            return answer if isinstance(answer, bytes) else NOT_DONE_YET
        return self._routed.render(request)


MALFORMED_FORM = Refusal(400, "Malformed multipart body.", "malformed")


def _first(request: Request, name: bytes) -> bytes | None:
    values = request.requestHeaders.getRawHeaders(name)
    return values[0] if values else None


def _form_boundary(request: Request) -> bytes | None:
    """The boundary of a form send (a Refusal when it has none usable), else None."""
    return form_boundary(_first(request, b"content-type"))


def _method_refusal(request: Request, allowed: bytes) -> Refusal:
    request.setHeader(b"Allow", allowed)
    method = request.method.decode("latin-1")[:32]
    return Refusal(405, f"Method {method} is not allowed.", "method")


