"""
The browser send page at ``/``, over real sockets with the real service.

Content negotiation is checked with plain HTTP clients (a browser's Accept
gets the page with a fresh nonce; curl keeps the text cheat sheet).  The
page itself runs in Debian's headless Chromium, driven by Playwright as in
``tests/live/spectators/test_dashboard_browser.py``: it sends typed text and
a file to real ``curl`` receivers, refuses a bad name without asking the
server, cancels a waiting send, and reports a refusal from the server.  A phone-sized screenshot is
saved to ``test-artifacts/send-page-phone.png`` for a person to look at.
The template alone is rendered in memory in ``tests/unit/web/test_sendpage.py``.
"""

from __future__ import annotations

import os
import re
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kit.browser import ARTIFACTS, Watched, launched_chromium
from tests.kit.clients import Clients, get_json, nothing_registered, wait_until_waiting
from tests.kit.service import Service, running_service
from tests.kit.waiting import wait_for

BROWSER_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
)
NONCE = re.compile(r"script-src 'nonce-([A-Za-z0-9_-]+)'")


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    with running_service(tmp_path) as started:
        yield started


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    yield from launched_chromium()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def fetch(url: str, accept: str | None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url)
    if accept is not None:
        request.add_header("Accept", accept)
    with urllib.request.urlopen(request, timeout=10) as response:
        headers = {k.lower(): v for k, v in response.headers.items()}
        return response.status, headers, response.read().decode()


# -- content negotiation ------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/api/v1/pipe/"])
@pytest.mark.parametrize("accept", [BROWSER_ACCEPT, "text/html"])
def test_a_browser_gets_the_page_with_a_fresh_nonce(
    service: Service, path: str, accept: str
) -> None:
    status, headers, body = fetch(service.base + path, accept)
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    csp = headers["content-security-policy"]
    nonce = NONCE.search(csp)
    assert nonce is not None, csp
    value = nonce.group(1)
    for directive in (
        "default-src 'none'", f"script-src 'nonce-{value}'", f"style-src 'nonce-{value}'",
        "connect-src 'self'", "img-src data:", "base-uri 'none'", "form-action 'none'",
    ):
        assert directive in csp.split("; "), (directive, csp)
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    assert headers["vary"] == "Accept"
    assert len(value) >= 16
    assert body.count(f'<script nonce="{value}">') == 1
    assert body.count(f'<style nonce="{value}">') == 1
    assert "{{" not in body
    # nothing external: no src= or stylesheet links at all
    assert " src=" not in body and "<link" not in body
    _, again, second = fetch(service.base + path, accept)
    other = NONCE.search(again["content-security-policy"])
    assert other is not None and other.group(1) != value
    assert f'<script nonce="{other.group(1)}">' in second


@pytest.mark.parametrize("path", ["/", "/api/v1/pipe/"])
@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "text/plain"])
def test_everyone_else_still_gets_the_text_help(
    service: Service, clients: Clients, path: str, accept: str | None
) -> None:
    args = ["-H", f"Accept: {accept}"] if accept else ["-H", "Accept:"]
    run = clients.curl(*args, service.base + path)
    assert run.wait(30) == 0
    assert run.status() == 200
    assert run.header("Content-Type") == "text/plain; charset=utf-8"
    assert run.header("Content-Security-Policy") is None
    text = run.text()
    assert text.startswith("hoodypipe: stream bytes from one host to others through a URL.\n")
    assert f"  curl -T myfile {service.base}/mypath\n" in text
    assert "<html" not in text


def test_plain_curl_gets_the_same_help_as_before(service: Service, clients: Clients) -> None:
    index = clients.curl(service.base + "/")
    cheat_sheet = clients.curl(service.base + "/help")
    assert index.wait(30) == 0 and cheat_sheet.wait(30) == 0
    assert index.text() == cheat_sheet.text()
    assert index.header("Content-Type") == "text/plain; charset=utf-8"


def test_head_for_a_browser_has_the_page_headers_only(service: Service) -> None:
    request = urllib.request.Request(service.base + "/", method="HEAD",
                                     headers={"Accept": BROWSER_ACCEPT})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert "nonce-" in response.headers["Content-Security-Policy"]
        assert response.read() == b""


# -- in the browser -------------------------------------------------------------------


class SendPage(Watched):
    """The send page in a phone-sized Chromium, with what it asked the server."""

    def __init__(self, browser: Any, url: str) -> None:
        self.requests: list[str] = []
        super().__init__(browser, url)
        self.page.on("request", lambda r: self.requests.append(f"{r.method} {r.url}"))

    def visible(self, selector: str) -> bool:
        return bool(self.page.is_visible(selector))

    def send(self) -> None:
        self.page.click("#send")


def sender_waiting(page: SendPage, receivers: int = 1) -> None:
    """The page shows the live state from ?progress and the sender's first line."""
    page.wait_text("#state", "Waiting for receivers")
    page.wait_text("#parties", f"0 of {receivers} receiver")
    page.wait_text("#log", f"[INFO] Waiting for {receivers} receiver(s) to connect...")


def test_send_typed_text_to_a_curl_receiver(
    chromium: Any, clients: Clients, service: Service
) -> None:
    name = unique("typed")
    typed = "hello from a phone\nsecond line: déjà vu ✓\n\ttabbed <b>not html</b>"
    page = SendPage(chromium, f"{service.base}/?name={name}")
    try:
        assert page.eval("document.getElementById('name').value") == name
        assert page.eval("document.getElementById('n').value") == "1"
        assert page.text("#phase") == "ready"
        page.page.fill("#text", typed)
        ARTIFACTS.mkdir(exist_ok=True)
        page.page.screenshot(path=str(ARTIFACTS / "send-page-phone-ready.png"))
        page.send()
        # the receive command shows at once, before anyone is there
        page.wait_text("#command", "curl")
        assert page.text("#command") == f"curl {service.base}/{name}"
        assert page.text("#url") == f"{service.base}/{name}"
        assert page.text("#watch") == f"{service.base}/{name}?progress"
        assert page.eval("document.getElementById('watch').href") == (
            f"{service.base}/{name}?progress")
        assert page.visible("#cancel") and not page.visible("#send")
        sender_waiting(page)
        assert page.text("#phase") == "sending…"
        page.page.screenshot(path=str(ARTIFACTS / "send-page-phone-waiting.png"))

        receiver = clients.receive(service.url(name))
        assert receiver.wait(30) == 0
        assert receiver.out.read_bytes() == typed.encode("utf-8")
        assert receiver.header("Content-Type") == "text/plain; charset=utf-8"
        assert receiver.header("Content-Disposition") is None

        page.wait_text("#result", "Delivered")
        assert page.text("#result") == "Delivered"
        assert page.text("#state") == "Complete"
        assert page.text("#phase") == "delivered"
        log = page.text("#log")
        for line in ("[INFO] Streaming to 1 receiver(s)...", "[INFO] Transfer complete."):
            assert line in log
        assert page.visible("#send") and not page.visible("#cancel")
        page.page.screenshot(path=str(ARTIFACTS / "send-page-phone.png"))  # 390x844
        page.page.screenshot(path=str(ARTIFACTS / "send-page-phone-full.png"), full_page=True)
        assert "PUT " + f"{service.base}/api/v1/pipe/{name}?n=1" in page.requests
        assert not page.errors, page.errors
        assert not page.dialogs
        # nothing kept in the browser
        assert page.eval("localStorage.length + sessionStorage.length") == 0
        assert page.eval("document.cookie") == ""
        # the same name again at once: the finished transfer still lingers on it
        # for spectators, and the page's live state must move past it
        page.page.fill("#text", "again")
        page.send()
        sender_waiting(page)
        again = clients.receive(service.url(name))
        assert again.wait(30) == 0 and again.text() == "again"
        page.wait_text("#result", "Delivered")
        assert not page.errors, page.errors
    finally:
        page.close()
    nothing_registered(service.base)


def test_send_a_file_to_two_receivers(
    chromium: Any, clients: Clients, service: Service, tmp_path: Path
) -> None:
    name = unique("file") + "/sub dir"
    encoded = name.replace(" ", "%20")
    payload = os.urandom(300_000)
    source = tmp_path / "upload"
    source.mkdir()
    picked = source / "résumé (final).bin"
    picked.write_bytes(payload)
    page = SendPage(chromium, f"{service.base}/?name={name.replace(' ', '%20')}&n=2")
    try:
        assert page.eval("document.getElementById('name').value") == name
        assert page.eval("document.getElementById('n').value") == "2"
        page.page.fill("#text", "this text is not sent")
        page.page.set_input_files("#file", str(picked))
        page.wait_text("#filename", "résumé (final).bin")
        assert page.text("#filesize") == "300 kB"
        assert page.eval("document.getElementById('text').disabled") is True
        page.send()
        page.wait_text("#command", "curl")
        url = f"{service.base}/{encoded}?n=2"
        assert page.text("#command") == f"curl '{url}' > 'résumé (final).bin'"
        assert page.text("#url") == url
        sender_waiting(page, 2)

        receivers = [clients.receive(url) for _ in range(2)]
        for receiver in receivers:
            assert receiver.wait(60) == 0
            assert receiver.out.read_bytes() == payload
            assert receiver.header("Content-Disposition") == (
                "attachment; filename=\"r_sum_ (final).bin\"; "
                "filename*=UTF-8''r%C3%A9sum%C3%A9%20%28final%29.bin"
            )
            assert receiver.header("Content-Length") == str(len(payload))
            assert receiver.header("Content-Type") == "application/octet-stream"
        page.wait_text("#result", "Delivered")
        assert "[INFO] Streaming to 2 receiver(s)..." in page.text("#log")
        assert not page.errors, page.errors
    finally:
        page.close()
    nothing_registered(service.base)


@pytest.mark.parametrize("bad", ["a/../b", "a//b", "./x", "x/", "/x", ".."])
def test_a_bad_name_is_refused_before_any_request(
    chromium: Any, service: Service, bad: str
) -> None:
    page = SendPage(chromium, f"{service.base}/")
    try:
        page.page.fill("#name", bad)
        page.page.fill("#text", "never sent")
        before = len(page.requests)
        page.send()
        page.wait_text("#error", "cannot have an empty")
        assert page.visible("#error")
        assert not page.visible("#receive") and not page.visible("#status")
        assert page.text("#phase") == "ready"
        assert page.requests[before:] == []
        health = get_json(service.base + "/api/v1/pipe/health")
        assert (health["waiting"], health["active"]) == (0, 0)
        assert not page.errors, page.errors
    finally:
        page.close()


def test_nothing_to_send_and_bad_receiver_counts_are_refused(
    chromium: Any, service: Service
) -> None:
    page = SendPage(chromium, f"{service.base}/?n=999")
    try:
        assert page.eval("document.getElementById('n').value") == "1"
        name = page.eval("document.getElementById('name').value")
        assert re.fullmatch(r"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}", name), name
        page.send()
        page.wait_text("#error", "Choose a file or type some text")
        page.page.fill("#text", "x")
        page.page.fill("#n", "0")
        page.send()
        page.wait_text("#error", "Receivers must be a whole number from 1 to 256.")
        assert not [r for r in page.requests if "/api/v1/pipe/" in r]
    finally:
        page.close()
    again = SendPage(chromium, f"{service.base}/")
    try:
        other = again.eval("document.getElementById('name').value")
        assert other != name  # a new random name on every visit
    finally:
        again.close()


def test_cancel_frees_the_name_and_a_hostile_name_stays_text(
    chromium: Any, service: Service, clients: Clients
) -> None:
    name = "<img src=x onerror=alert(1)>/ünï"
    page = SendPage(chromium, f"{service.base}/")
    try:
        page.page.fill("#name", name)
        page.page.fill("#text", "cancel me")
        page.send()
        wait_until_waiting(service.base, name)
        sender_waiting(page)
        encoded = "%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E/%C3%BCn%C3%AF"
        assert page.text("#command") == f"curl {service.base}/{encoded}"
        page.page.click("#cancel")
        page.wait_text("#result", "Cancelled")
        assert page.text("#phase") == "cancelled"
        nothing_registered(service.base)
        assert page.eval("document.querySelectorAll('img').length") == 0
        assert not page.dialogs
        assert not page.errors, page.errors
        # the name is free: a new send on it works at once
        page.send()
        sender_waiting(page)
        receiver = clients.receive(service.url(encoded))
        assert receiver.wait(30) == 0
        assert receiver.text() == "cancel me"
        page.wait_text("#result", "Delivered")
    finally:
        page.close()


def test_a_refusal_from_the_server_is_shown_as_failed(
    chromium: Any, service: Service
) -> None:
    page = SendPage(chromium, f"{service.base}/?name=help")
    try:
        page.page.fill("#text", "to a reserved path")
        page.send()
        page.wait_text("#result", "Failed: Cannot send to a reserved path.")
        assert page.text("#phase") == "failed"
        assert page.visible("#send")
    finally:
        page.close()


def test_a_receiver_that_leaves_is_a_failure_not_delivered(
    chromium: Any, service: Service, clients: Clients
) -> None:
    name = unique("leaves")
    page = SendPage(chromium, f"{service.base}/?name={name}")
    try:
        big = page.eval(
            "(() => { const f = new File([new Uint8Array(64 * 1024 * 1024)], 'big.bin');"
            " const t = new DataTransfer(); t.items.add(f);"
            " const i = document.getElementById('file'); i.files = t.files;"
            " i.dispatchEvent(new Event('change')); return f.size; })()"
        )
        assert big == 64 * 1024 * 1024
        page.send()
        # Chromium reads a response only once its upload is done, so while a big
        # body waits the live state comes from ?progress alone
        page.wait_text("#state", "Waiting for receivers")
        page.wait_text("#parties", "0 of 1 receiver")
        receiver = clients.curl("--limit-rate", "200k", service.url(name))
        page.wait_text("#state", "Streaming")
        wait_for(lambda: receiver.out.exists() and receiver.out.stat().st_size > 0, 15,
                 "bytes at the receiver")
        receiver.kill()
        page.wait_text("#result", "Failed: ")
        assert "All receivers disconnected" in page.text("#result")
        assert "Delivered" not in page.text("#result")
    finally:
        page.close()
    nothing_registered(service.base)


if __name__ == "__main__":  # pragma: no cover - handy for a person
    raise SystemExit(subprocess.call(["pytest", __file__, "-v"]))
