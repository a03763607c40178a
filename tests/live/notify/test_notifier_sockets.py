"""The notifier over real sockets on 127.0.0.1 (a local Twisted Site receives)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from hoodypipe.common.http import make_http_client
from hoodypipe.common.retry import RetryPolicy
from hoodypipe.core.events import TransferResult
from hoodypipe.notify.notifier import Notifier
from hoodypipe.settings import Settings
from tests.kit.notify import (
    HANG,
    Answer,
    Started,
)
from tests.kit.service import free_port
from tests.kit.waiting import eventually

RESULT = TransferResult(
    name="real", transfer_id="r1", ok=True, bytes=1, total_bytes=1,
    started_at=1.0, ended_at=2.0, receivers=1,
)
FAST = RetryPolicy(tries=3, initial=0.05, factor=2.0, max_delay=1.0)




def notifier(url: str, **settings: object) -> Notifier:
    return Notifier(
        reactor,  # type: ignore[arg-type]
        Settings(on_done=(url,), **settings),  # type: ignore[arg-type]
        make_http_client(reactor),  # type: ignore[arg-type]
        policy=FAST,
    )


@pytest_twisted.ensureDeferred
async def test_500_twice_then_202_is_three_tries(
    receiver_for: Callable[[list[Answer]], Started],
) -> None:
    receiver, url = receiver_for([500, 500, 202])
    n = notifier(url)
    n.transfer_done(RESULT)
    await eventually(lambda: n.delivered == 1)
    assert len(receiver.received) == 3
    times = [r.at for r in receiver.received]
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert gaps[0] >= 0.04 and gaps[1] >= 0.09
    assert all(r.json()["transferId"] == "r1" for r in receiver.received)


@pytest_twisted.ensureDeferred
async def test_a_hanging_receiver_is_cut_by_the_timeout(
    receiver_for: Callable[[list[Answer]], Started],
) -> None:
    receiver, url = receiver_for([HANG])
    n = notifier(url, hook_timeout=0.3)
    started = time.monotonic()
    n.transfer_done(RESULT)
    await eventually(lambda: n.failed == 1)
    took = time.monotonic() - started
    assert len(receiver.received) == 3
    # three tries of 0.3 s plus 0.05 + 0.1 s of backoff, never much more
    assert 0.9 <= took < 3.0
    # the receiver saw each hanging request's connection closed by us
    await eventually(lambda: len(receiver.hang_ended) == 3)


@pytest_twisted.ensureDeferred
async def test_connection_refused_is_retried_then_given_up() -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    n = notifier(url, hook_timeout=2.0)
    n.transfer_done(RESULT)
    await eventually(lambda: n.failed == 1)
    assert n.pending == 0


@pytest_twisted.ensureDeferred
async def test_404_is_not_retried(
    receiver_for: Callable[[list[Answer]], Started],
) -> None:
    receiver, url = receiver_for([404, 202])
    n = notifier(url)
    n.transfer_done(RESULT)
    await eventually(lambda: n.failed == 1)
    await deferLater(reactor, 0.3)
    assert len(receiver.received) == 1
