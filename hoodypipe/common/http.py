"""
The HTTP client both sides use to talk to other systems: the server for its
webhooks and PagerDuty events, ``hoodypipe watch`` for the feed it follows
and its own PagerDuty event.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

from treq.client import HTTPClient
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTCP
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.iweb import IAgent


class HTTPClientLike(Protocol):
    """What we need of ``treq.client.HTTPClient`` (``StubTreq`` fits too)."""

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Any = ...,
        data: Any = ...,
        allow_redirects: bool = ...,
        unbuffered: bool = ...,
    ) -> Deferred[Any]: ...


def make_http_client(reactor: IReactorTCP, connect_timeout: float = 10.0) -> HTTPClient:
    """
    A treq ``HTTPClient`` with a bounded connect and no persistent
    connections: a hook is one request now and then, and a watched feed is
    one long response, so a pool of idle connections would only hold sockets.
    """
    pool = HTTPConnectionPool(reactor, persistent=False)  # type: ignore[no-untyped-call, unused-ignore]
    agent = Agent(  # type: ignore[no-untyped-call, unused-ignore]
        reactor, connectTimeout=connect_timeout, pool=pool
    )
    return HTTPClient(cast(IAgent, agent))
