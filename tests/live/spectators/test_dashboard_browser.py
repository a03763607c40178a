"""
The dashboard in a real headless Chromium (Debian's), driven by Playwright.

A paced transfer runs while the page is open: the bar and the byte count
must move without a reload, the final line must appear, and a name that
needs escaping must show as text.  A phone-sized screenshot is saved to
``test-artifacts/dashboard-phone.png`` for a person to look at.

Needs ``apt-get install chromium`` and ``pip install playwright`` (never
``playwright install``: the system browser is used).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.kit.browser import ARTIFACTS, Watched, launched_chromium
from tests.kit.clients import Clients
from tests.kit.service import running_service
from tests.kit.transfers import Paced
from tests.kit.waiting import wait_for


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launched_chromium()


def test_dashboard_follows_a_transfer_live(
    browser: Any, clients: Clients, tmp_path: Path
) -> None:
    with running_service(tmp_path, "--linger", "30") as service:
        watched = Watched(browser, service.url("movie.mkv", "progress"))
        try:
            page = watched.page
            assert "movie.mkv" in watched.text("h1")
            watched.wait_text("#state", "Idle")
            watched.wait_text("#conn", "live")
            page.evaluate("window.__sameDocument = 'yes'")

            clients.curl(service.url("movie.mkv"))
            sender = Paced(clients, service.url("movie.mkv", "size=6M"),
                           6_000_000, 3.0)
            watched.wait_text("#state", "Streaming")
            widths: set[str] = set()
            moved: set[str] = set()
            deadline = time.monotonic() + 15
            shot = False
            while sender.curl.process.poll() is None and time.monotonic() < deadline:
                widths.add(watched.eval("document.getElementById('fill').style.width"))
                moved.add(watched.text("#bytes"))
                if not shot and len(moved) >= 6:
                    ARTIFACTS.mkdir(exist_ok=True)
                    page.screenshot(path=str(ARTIFACTS / "dashboard-phone-streaming.png"))
                    shot = True
                time.sleep(0.1)
            assert sender.wait() == 0
            watched.wait_text("#final", "Complete: 6.00 MB in ")
            assert "average" in watched.text("#final")
            # the bar and the count moved while it streamed, without a reload
            assert len({w for w in widths if w not in ("", "0", "0%")}) >= 3, widths
            assert len(moved - {"—"}) >= 3, moved
            assert page.evaluate("window.__sameDocument") == "yes"
            assert watched.text("#percent") == "100%"
            assert watched.text("#conn") == "finished"
            # the state comes from done: the final state event follows it,
            # after the page has closed its EventSource
            assert watched.text("#state") == "Complete"
            assert "complete" in watched.eval("document.getElementById('state').className")
            timeline = watched.text("#timeline")
            for label in ("Idle", "Waiting", "Streaming", "Complete"):
                assert label in timeline
            # the speed chart was drawn (some non-transparent pixels)
            painted = watched.eval(
                "(() => { const c = document.getElementById('chart');"
                " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height)"
                ".data; let n = 0; for (let i = 3; i < d.length; i += 4)"
                " { if (d[i]) n++; } return n; })()"
            )
            assert painted > 500
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "dashboard-phone.png"), full_page=True)
            assert not watched.errors, watched.errors
            assert not watched.dialogs
        finally:
            watched.close()


def test_dashboard_shows_a_hostile_name_as_text(
    browser: Any, tmp_path: Path
) -> None:
    name = "<img src=x onerror=alert(1)>"
    with running_service(tmp_path) as service:
        watched = Watched(browser, service.url(quote(name, safe=""), "progress"))
        try:
            watched.wait_text("#state", "Idle")
            assert watched.text("h1") == name
            assert watched.eval("document.querySelectorAll('img').length") == 0
            assert name in watched.eval("document.title")
            assert not watched.dialogs
            assert not watched.errors, watched.errors
        finally:
            watched.close()


def test_dashboard_shows_failure_then_last_transfer(
    browser: Any, clients: Clients, tmp_path: Path
) -> None:
    with running_service(tmp_path, "--linger", "1") as service:
        watched = Watched(browser, service.url("doomed", "progress"))
        try:
            watched.wait_text("#conn", "live")
            clients.curl(service.url("doomed"))
            sender = Paced(clients, service.url("doomed"), 20_000_000, 20.0)
            watched.wait_text("#state", "Streaming")
            wait_for(lambda: watched.text("#bytes") not in ("—", ""), 10, "bytes")
            sender.kill()
            watched.wait_text("#final", "Failed: Sender disconnected")
            assert watched.text("#state") == "Failed"
            assert watched.text("#conn") == "finished"
        finally:
            watched.close()
        # after the linger a new visitor sees the path idle with how it ended
        wait_for(lambda: b'"state":"idle"' in subprocess.run(
            ["curl", "-sS", service.url("doomed", "status")], capture_output=True,
            timeout=10).stdout, 10, "the linger to end")
        later = Watched(browser, service.url("doomed", "progress"))
        try:
            later.wait_text("#state", "Idle")
            later.wait_text("#last", "Last transfer")
            assert "Failed: Sender disconnected" in later.text("#final")
        finally:
            later.close()


def test_dashboard_says_when_the_server_is_gone(browser: Any, tmp_path: Path) -> None:
    with running_service(tmp_path) as service:
        watched = Watched(browser, service.url("gone", "progress"))
        try:
            watched.wait_text("#conn", "live")
            service.stop()
            wait_for(lambda: any(word in watched.text("#conn")
                                 for word in ("reconnecting", "offline")), 15,
                     "the page to notice")
        finally:
            watched.close()


if __name__ == "__main__":  # pragma: no cover - handy for a person
    sys.exit(pytest.main([__file__, "-v"]))
