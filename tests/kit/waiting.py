"""
Waiting with a deadline: tests wait on conditions, never on fixed sleeps.

``wait_for`` polls from a blocking test (real processes, real sockets);
``eventually`` waits on the running reactor (``pytest_twisted`` tests).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T], timeout: float = 20.0, what: str = "condition",
    interval: float = 0.02,
) -> T:
    """Poll ``condition`` until it returns something true, and return that;
    fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


async def eventually(
    predicate: Callable[[], bool], timeout: float = 10.0, step: float = 0.02
) -> None:
    """Wait on the running reactor until ``predicate()`` holds (bounded)."""
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {predicate}")
        await deferLater(reactor, step)
