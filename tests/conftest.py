from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients import Clients
from tests.service import Service, running_service


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    """A hoodypipe with default settings on a free loopback port."""
    with running_service(tmp_path) as running:
        yield running


@pytest.fixture
def clients(tmp_path: Path) -> Iterator[Clients]:
    """Real curls started by the test; every one is stopped at the end."""
    started = Clients(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()
