"""
Test kit for outbound notifications: a receiver that records what it gets,
served in memory (``stub_client``, StubTreq) or on loopback (``listen_local``).

The kit is tested in ``tests/unit/kit/test_notify_kit.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

import attrs
from treq.testing import StubTreq
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from hoodypipe.common.http import HTTPClientLike

HANG = "hang"
Answer = int | tuple[int, dict[str, str]] | str


@attrs.define
class Received:
    at: float
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class RecordingReceiver(Resource):
    """
    Answers POSTs from a script of answers (a status, a status with headers,
    or ``HANG``: never answer); the last answer repeats. Records every
    request with the time ``now()`` gives.
    """

    isLeaf = True

    def __init__(self, answers: list[Answer], now: Callable[[], float]) -> None:
        super().__init__()
        self.answers = list(answers)
        self.now = now
        self.received: list[Received] = []
        self.hanging: list[Request] = []
        self.hang_ended: list[float] = []

    def render(self, request: Request) -> bytes | int:
        assert request.content is not None
        headers = {
            k.decode().lower(): v[0].decode()
            for k, v in request.requestHeaders.getAllRawHeaders()
        }
        self.received.append(
            Received(
                self.now(),
                request.method.decode(),
                request.path.decode(),
                headers,
                request.content.read(),
            )
        )
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if answer == HANG:
            self.hanging.append(request)
            request.notifyFinish().addBoth(lambda _: self.hang_ended.append(self.now()))
            return NOT_DONE_YET
        extra: dict[str, str] = {}
        if isinstance(answer, tuple):
            answer, extra = answer
        assert isinstance(answer, int)
        request.setResponseCode(answer)
        for name, value in extra.items():
            request.setHeader(name, value)
        return b"ok\n" if answer < 400 else b"nope: try later\n"


def stub_client(resource: Resource) -> tuple[HTTPClientLike, StubTreq]:
    stub = StubTreq(resource)
    return cast(HTTPClientLike, stub), stub


def listen_local(resource: Resource) -> tuple[Any, int]:
    """Serve ``resource`` on a free 127.0.0.1 port; returns (port, number)."""
    from twisted.internet import reactor
    from twisted.web.server import Site

    port = reactor.listenTCP(0, Site(resource), interface="127.0.0.1")  # type: ignore[attr-defined]
    return port, port.getHost().port


#: A started recording receiver and its URL.
Started = tuple["RecordingReceiver", str]
