"""Fixtures shared by unit and live tests; their building blocks are in tests/kit."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import pytest_twisted
from twisted.logger import LogEvent, globalLogPublisher

from tests.kit.clients import Clients
from tests.kit.notify import Answer, RecordingReceiver, Started, listen_local
from tests.kit.service import Service, running_service
from tests.kit.watchfeed import FakeFeed, Script, Serve


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    """A hoodypipe with default settings on a free loopback port."""
    with running_service(tmp_path) as running:
        yield running


@pytest.fixture
def logged() -> Iterator[list[LogEvent]]:
    """Every log event emitted during the test, in order."""
    events: list[LogEvent] = []
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)


@pytest.fixture
def clients(tmp_path: Path) -> Iterator[Clients]:
    """Real curls started by the test; every one is stopped at the end."""
    started = Clients(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


@pytest_twisted.async_yield_fixture
async def receiver_for() -> AsyncIterator[Callable[[list[Answer]], Started]]:
    """Start recording receivers on loopback; all stop at the end of the test."""
    ports = []

    def start(answers: list[Answer]) -> Started:
        receiver = RecordingReceiver(answers, time.monotonic)
        port, number = listen_local(receiver)
        ports.append(port)
        return receiver, f"http://127.0.0.1:{number}/hook"

    yield start
    for port in ports:
        await port.stopListening()


@pytest_twisted.async_yield_fixture
async def serve() -> AsyncIterator[Serve]:
    started = []

    def start(scripts: list[Script]) -> tuple[FakeFeed, str]:
        feed = FakeFeed(scripts)
        port, number = listen_local(feed)
        started.append((feed, port))
        return feed, f"http://127.0.0.1:{number}/api/v1/pipe/demo"

    yield start
    for feed, port in started:
        feed.close_all()
        await port.stopListening()
