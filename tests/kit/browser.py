"""
Debian's chromium, headless, driven by Playwright (no browser download),
and ``Watched``: a phone-sized page that records what it complained about.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kit.service import REPO
from tests.kit.waiting import wait_for

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
    "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
ARTIFACTS = REPO / "test-artifacts"


def chromium_path() -> str:
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    found = shutil.which("chromium")
    if found is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    return found


def launched_chromium() -> Iterator[Any]:
    """A launched browser for a module-scoped fixture; closed at the end."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    executable = chromium_path()
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield launched
        finally:
            launched.close()


class Watched:
    """A dashboard page plus what the page complained about."""

    def __init__(self, browser: Any, url: str) -> None:
        self.context = browser.new_context(
            viewport={"width": 390, "height": 844}, device_scale_factor=2,
            is_mobile=True, has_touch=True,
        )
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on(
            "console",
            lambda m: self.errors.append(m.text) if m.type == "error" else None,
        )

        def on_dialog(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        self.page.on("dialog", on_dialog)
        self.page.goto(url, wait_until="domcontentloaded", timeout=15_000)

    def text(self, selector: str) -> str:
        return str(self.page.text_content(selector) or "")

    def eval(self, script: str) -> Any:
        return self.page.evaluate(script)

    def wait_text(self, selector: str, needle: str, timeout: float = 15) -> None:
        wait_for(lambda: needle in self.text(selector), timeout,
                 f"{needle!r} in {selector} (have {self.text(selector)!r})")

    def close(self) -> None:
        self.context.close()
