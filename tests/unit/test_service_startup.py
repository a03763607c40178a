"""What build_app does to the process once, at start-up."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from twisted.internet.testing import MemoryReactorClock

from hoodypipe.service import build_app
from hoodypipe.settings import Settings


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # give the test process its collector back


def test_the_startup_heap_is_frozen_out_of_collections(unfrozen: None) -> None:
    assert gc.get_freeze_count() == 0
    app = build_app(MemoryReactorClock(), Settings())
    assert gc.get_freeze_count() > 10_000
    assert not any(o is app.registry for o in gc.get_objects())  # frozen, not collected
    later = object.__new__(type("Later", (), {}))
    assert any(o is later for o in gc.get_objects())  # what comes after is collected as usual


def test_an_epoll_reactor_dispatches_without_the_legacy_log_context(unfrozen: None) -> None:
    from twisted.internet.epollreactor import EPollReactor

    from hoodypipe.bytepath.dispatch import lean_poll

    reactor = EPollReactor()
    try:
        build_app(reactor, Settings())
        assert reactor.doIteration.__func__ is lean_poll  # type: ignore[attr-defined]
    finally:
        reactor.removeAll()
        reactor.waker.connectionLost(None)
        reactor._poller.close()
