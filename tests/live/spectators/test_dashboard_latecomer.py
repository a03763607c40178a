"""
The dashboard at sunrise, in headless Chromium: someone opens the URL of an
eight-hour transfer that ended hours ago, on a server restarted since (its
result read back from ``--state-dir``), and sees how it ended: bytes,
duration, average speed, the sha256, when it ended and how long ago, and no
empty chart. Then a new transfer on the path replaces that view with the
live one. Screenshots (390x844 and 1280x800) go to ``test-artifacts/``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.task import Clock

from hoodypipe.common.wire import done_event
from hoodypipe.core.events import TransferResult
from hoodypipe.spectators.store import FILE_NAME, ResultStore
from tests.kit.browser import ARTIFACTS, Watched, launched_chromium
from tests.kit.clients import Clients, get_json
from tests.kit.service import running_service
from tests.kit.transfers import Paced
from tests.kit.waiting import wait_for

NAME = "migrations/db.tar.zst"
DIGEST = hashlib.sha256(b"last night's database").hexdigest()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launched_chromium()


def seed(state: Path, ended: float) -> None:
    """The row a server wrote when the night's transfer ended (then it restarted)."""
    result = TransferResult(
        name=NAME, transfer_id="night-transfer", ok=True, bytes=7_600_000_000,
        total_bytes=7_600_000_000, started_at=ended - 8 * 3600 - 120, ended_at=ended,
        receivers=1, sha256=DIGEST)
    clock = Clock()
    clock.advance(ended)
    ResultStore(None, clock, str(state), 86400, 100).load(ended)  # type: ignore[arg-type]
    with sqlite3.connect(state / FILE_NAME) as connection:
        connection.execute("INSERT INTO last_transfer (name, stored_at, body) VALUES (?, ?, ?)",
                           (NAME, ended, json.dumps(done_event(result))))


def shoot(watched: Watched, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    watched.page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_a_latecomer_sees_how_the_night_ended(
    browser: Any, clients: Clients, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    seed(state, time.time() - 3 * 3600 - 300)
    with running_service(tmp_path, "--state-dir", str(state)) as service:
        watched = Watched(browser, service.url(NAME, "progress"))
        try:
            watched.wait_text("#conn", "live")
            watched.wait_text("#final", "Complete: 7.60 GB in 8h 2m")
            assert watched.text("#state") == "Idle"
            assert watched.text("#last").startswith("Last transfer, ended ")
            assert watched.text("#last").endswith(" · 3 hours ago")
            assert watched.text("#bytes") == "7.60 GB"
            assert watched.text("#speed-label") == "Average"
            assert watched.text("#speed") == "263 kB/s"
            assert (watched.text("#eta-label"), watched.text("#eta")) == ("Ended", "3 h ago")
            assert watched.text("#elapsed") == "8h 2m"
            assert watched.text("#sha256") == DIGEST
            assert watched.text("#percent") == "100%"
            # no empty chart waiting for data that will never come
            assert not watched.eval("document.getElementById('chart').offsetHeight")
            assert "no speed history" in watched.text("#chart-note")
            assert "Complete · 7.60 GB" in watched.text("#timeline")
            shoot(watched, "dashboard-latecomer-phone.png")
            wide = browser.new_context(viewport={"width": 1280, "height": 800})
            try:
                page = wide.new_page()
                page.goto(service.url(NAME, "progress"), wait_until="domcontentloaded")
                page.wait_for_function(
                    "document.getElementById('sha256').textContent.length === 64")
                page.screenshot(path=str(ARTIFACTS / "dashboard-latecomer-wide.png"))
            finally:
                wide.close()

            # a new transfer on the path: the old result gives way to the live view
            clients.curl(service.url(NAME))
            sender = Paced(clients, service.url(NAME, "sha256"), 3_000_000, 2.0)
            watched.wait_text("#state", "Streaming")
            assert "hidden" in watched.eval("document.getElementById('receipt').className")
            assert watched.text("#speed-label") == "Speed"
            assert sender.wait() == 0
            watched.wait_text("#final", "Complete: 3.00 MB in ")
            expected = hashlib.sha256(b"x" * 3_000_000).hexdigest()
            watched.wait_text("#sha256", expected)
            assert watched.text("#last").startswith("Ended ")
            assert watched.text("#eta") == "just now"
            assert watched.eval("document.getElementById('chart').offsetHeight") > 0
            shoot(watched, "dashboard-done-with-receipt-phone.png")
            assert not watched.errors, watched.errors
            assert not watched.dialogs
        finally:
            watched.close()


def test_a_failed_last_transfer_and_no_receipt(
    browser: Any, clients: Clients, tmp_path: Path
) -> None:
    with running_service(tmp_path, "--linger", "1") as service:
        receiver = clients.curl(service.url("doomed"))
        sender = Paced(clients, service.url("doomed", "size=9M"), 9_000_000, 30.0)
        wait_for(lambda: receiver.out.exists() and receiver.out.stat().st_size, 10,
                 "the first bytes at the receiver")
        sender.kill()
        receiver.wait()
        wait_for(lambda: get_json(service.url("doomed", "status"))["state"] == "idle", 10,
                 "the linger to end")
        watched = Watched(browser, service.url("doomed", "progress"))
        try:
            watched.wait_text("#state", "Idle")
            watched.wait_text("#final", "Failed: Sender disconnected (after ")
            assert watched.text("#last").startswith("Last transfer, ended ")
            assert "hidden" in watched.eval("document.getElementById('receipt').className")
            assert "bar failed" == watched.eval("document.getElementById('bar').className")
            assert not watched.errors, watched.errors
        finally:
            watched.close()
