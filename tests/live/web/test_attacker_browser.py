"""
The attacks of issue 8 (findings 1 and 2) replayed in Debian's headless
Chromium against the real service.

An attacker sends a page whose script would set ``document.title`` and call
back to a beacon URL, under every Content-Type spelling that once got script
through; a victim's browser opens the receiver URL.  The script must not
run: no title change, no beacon request, whatever the browser did with the
body (shown as text, or downloaded).  A control shows the same page does run
its script in this browser when served as plain ``text/html`` from elsewhere,
so the check can fail.

The service-worker chain is tested from the only script context an attacker
could ever get on the relay's origin: we evaluate script (over the DevTools
protocol) in a page of that origin, ``/robots.txt``, and try to register a
worker whose script is waiting in a pipe.  The browser's fetch of that script
carries ``Service-Worker: script`` and must be refused, so the registration
fails, the waiting sender is untouched, and a later browser session is not
controlled by anything.

Media and fetch() still work under the receivers' ``sandbox`` policy: an
image and an audio file opened directly render and play, and a same-origin
fetch() reads a receiver's body (what the future ``?video`` page does).
"""

from __future__ import annotations

import io
import struct
import uuid
import wave
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.kit.browser import launched_chromium
from tests.kit.clients import Clients, Curl, nothing_registered, wait_until_waiting
from tests.kit.service import Service, running_service
from tests.kit.waiting import wait_for


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    yield from launched_chromium()


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(tmp_path_factory.mktemp("attacker")) as started:
        yield started


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Victim:
    """A fresh browser session that records every request it makes."""

    def __init__(self, chromium: Any) -> None:
        self.context = chromium.new_context(accept_downloads=True)
        self.requests: list[str] = []
        self.context.on("request", lambda request: self.requests.append(request.url))
        self.page = self.context.new_page()
        self.dialogs: list[str] = []

        def on_dialog(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        self.page.on("dialog", on_dialog)

    def open(self, url: str) -> str:
        """Navigate to ``url``: the document's type, or ``download``."""
        try:
            self.page.goto(url, wait_until="load", timeout=15_000)
        except Exception as error:  # playwright's Error: "Download is starting"
            if "Download is starting" not in str(error):
                raise
            return "download"
        return str(self.page.evaluate("document.contentType"))

    def evaluate(self, script: str) -> Any:
        return self.page.evaluate(script)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def victim(chromium: Any) -> Iterator[Victim]:
    opened = Victim(chromium)
    try:
        yield opened
    finally:
        opened.close()


def attack_page(beacon: str) -> str:
    return (
        "<!doctype html><html><head><title>harmless</title>"
        f"<script>document.title = 'owned'; fetch('{beacon}');"
        f"new Image().src = '{beacon}?img'; alert('owned');</script></head>"
        f"<body><img src='data:image/png;base64,AA' onerror=\"fetch('{beacon}?onerror')\">"
        f"<svg onload=\"fetch('{beacon}?svg')\"></svg>"
        "<p>if you can read this, it is text</p></body></html>"
    )


def attack_svg(beacon: str) -> str:
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" onload="fetch(\'' + beacon + '?onload\')">'
        "<script>document.title = 'owned'; fetch('" + beacon + "');</script></svg>"
    )


def send(clients: Clients, relay: Service, name: str, content_type: str,
         body: str | bytes) -> Curl:
    data = body.encode() if isinstance(body, str) else body
    path = relay.log_path.parent / f"{name}.body"
    path.write_bytes(data)
    sender = clients.curl("-H", f"Content-Type: {content_type}", "--data-binary", f"@{path}",
                          relay.url(name, "wait=30"))
    wait_until_waiting(relay.base, name)
    return sender


def beaconed(victim: Victim, beacon: str) -> list[str]:
    return [url for url in victim.requests if beacon in url]


# -- finding 1: script on the relay's origin -------------------------------------------


@pytest.mark.parametrize("content_type, shape", [
    ("text/html x", "page"),
    ('text/html "', "page"),
    ("text/html(", "page"),
    ("text/html", "page"),
    ("TEXT/HTML; charset=utf-8", "page"),
    ("application/xhtml+xml x", "page"),
    ("image/svg+xml x", "svg"),
    ("image/svg+xml", "svg"),
    ("text/x-javascript", "page"),
    ("text/javascript1.5 x", "page"),
])
def test_a_sent_page_runs_no_script_in_the_victims_browser(
    relay: Service, clients: Clients, victim: Victim, content_type: str, shape: str,
) -> None:
    name = unique("victim")
    beacon = f"/beacon-{uuid.uuid4().hex}"
    body = attack_page(beacon) if shape == "page" else attack_svg(beacon)
    sender = send(clients, relay, name, content_type, body)
    kind = victim.open(relay.url(name))
    assert sender.wait(30) == 0
    assert kind in ("text/plain", "download"), kind
    if kind == "text/plain":
        assert victim.evaluate("document.title") != "owned"
        assert "<script>" in victim.evaluate("document.body.innerText")
        assert victim.evaluate("document.scripts.length") == 0
        # an opaque origin: nothing of the relay's origin is reachable from it
        assert victim.evaluate("self.origin") == "null"
    assert beaconed(victim, beacon) == []
    assert victim.dialogs == []
    nothing_registered(relay.base)


def test_control_the_same_page_does_run_script_when_served_as_html(
    relay: Service, victim: Victim,
) -> None:
    """Without the relay's answers the attack works in this browser: the
    checks above would see it."""
    beacon = f"/beacon-{uuid.uuid4().hex}"
    page_url = f"{relay.base}/control-{uuid.uuid4().hex}"

    def html(route: Any) -> None:
        route.fulfill(status=200, content_type="text/html", body=attack_page(beacon))

    victim.page.route(page_url, html)
    victim.page.route(f"{relay.base}/beacon-*", lambda route: route.fulfill(status=204))
    assert victim.open(page_url) == "text/html"
    wait_for(lambda: beaconed(victim, beacon), 10, "the control page's beacon")
    assert victim.evaluate("document.title") == "owned"
    assert victim.dialogs == ["owned"]


# -- finding 2: a service worker on the relay's origin ---------------------------------------

REGISTER = """async (script) => {
    try {
        await navigator.serviceWorker.register(script, {scope: '/'});
        return 'registered';
    } catch (error) {
        return 'refused: ' + error.message;
    }
}"""


@pytest.mark.parametrize("content_type", ["text/javascript x", "text/javascript"])
def test_no_service_worker_can_be_registered_on_the_relays_origin(
    relay: Service, clients: Clients, chromium: Any, victim: Victim, content_type: str,
) -> None:
    worker = unique("worker") + ".js"
    sender = send(clients, relay, worker, content_type,
                  "self.addEventListener('fetch', e => e.respondWith(new Response('owned')));")
    # A script context on the relay's origin: the attacker's best case.
    assert victim.open(f"{relay.base}/robots.txt") == "text/plain"
    assert victim.evaluate("window.isSecureContext && 'serviceWorker' in navigator") is True
    outcome = victim.evaluate(f"({REGISTER})('/{worker}')")
    assert outcome.startswith("refused: "), outcome
    assert "(400)" in outcome, outcome
    assert victim.evaluate("navigator.serviceWorker.getRegistrations()"
                           ".then(r => r.length)") == 0
    # The worker fetch was refused by its header, not by the script's type: the
    # sender is still there, waiting for a real receiver.
    assert any(url.endswith(f"/{worker}") for url in victim.requests)
    wait_until_waiting(relay.base, worker)
    assert sender.process.poll() is None

    # A later, separate session on the same relay gets the relay's answer,
    # and no worker controls any page of the origin.
    later = Victim(chromium)
    try:
        victim_name = unique("victim")
        assert later.open(relay.url(victim_name, "wait=1")) == "text/plain"
        assert later.evaluate("document.body.innerText").strip() == (
            "[ERROR] Timed out waiting for sender.")
        assert later.open(f"{relay.base}/robots.txt") == "text/plain"
        assert later.evaluate("navigator.serviceWorker.controller") is None
        assert later.evaluate("navigator.serviceWorker.getRegistrations()"
                              ".then(r => r.length)") == 0
    finally:
        later.close()
    sender.kill()
    nothing_registered(relay.base)


def test_a_worker_registered_from_the_page_chain_never_happens(
    relay: Service, clients: Clients, victim: Victim,
) -> None:
    """The whole chain of finding 2: a page sent as 'text/html x' that would
    register a worker sent as 'text/javascript x' with scope '/'."""
    worker = unique("chain") + ".js"
    page = unique("chain-page")
    worker_sender = send(clients, relay, worker, "text/javascript x",
                         "self.addEventListener('fetch', e => e.respondWith(new Response('x')));")
    page_sender = send(
        clients, relay, page, "text/html x",
        f"<script>navigator.serviceWorker.register('/{worker}', {{scope: '/'}})"
        ".then(() => document.title = 'registered')</script>")
    assert victim.open(relay.url(page)) in ("download", "text/plain")
    assert page_sender.wait(30) == 0
    assert not any(url.endswith(f"/{worker}") for url in victim.requests)
    assert victim.open(f"{relay.base}/robots.txt") == "text/plain"
    assert victim.evaluate("navigator.serviceWorker.getRegistrations()"
                           ".then(r => r.length)") == 0
    worker_sender.kill()
    nothing_registered(relay.base)


# -- what must still work under the sandbox ------------------------------------------------


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def wav(seconds: float, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(rate)
        w.writeframes(bytes((128 + (i % 32) * 3) % 256 for i in range(int(seconds * rate))))
    return out.getvalue()


def test_an_image_sent_through_a_pipe_still_renders(
    relay: Service, clients: Clients, victim: Victim,
) -> None:
    name = unique("image")
    sender = send(clients, relay, name, "image/png", png(7, 5))
    assert victim.open(relay.url(name)) == "image/png"
    assert sender.wait(30) == 0
    assert victim.evaluate(
        "[document.images[0].naturalWidth, document.images[0].naturalHeight]") == [7, 5]
    nothing_registered(relay.base)


def test_audio_sent_through_a_pipe_still_plays(
    relay: Service, clients: Clients, victim: Victim,
) -> None:
    """Chromium's media document fetches its URL a second time (from its own
    <video> element, with CORS from the sandbox's opaque origin), so the
    sender sends twice: the second copy is what plays."""
    name = unique("audio")
    first = send(clients, relay, name, "audio/wav", wav(1.5))
    assert victim.open(relay.url(name)) == "audio/wav"
    first.wait(30)
    second = send(clients, relay, name, "audio/wav", wav(1.5))
    assert second.wait(30) == 0
    wait_for(lambda: victim.evaluate("document.querySelector('video').readyState") >= 1,
             10, "the media document to load the audio")
    duration = victim.evaluate("document.querySelector('video').duration")
    assert 1.4 < duration < 1.6
    assert victim.evaluate("self.origin") == "null"  # sandboxed, and it still plays
    nothing_registered(relay.base)


def test_a_same_origin_fetch_reads_a_sandboxed_receiver(
    relay: Service, clients: Clients, victim: Victim,
) -> None:
    """What the ?video player does: fetch() the raw stream from the same path."""
    name = unique("fetched")
    payload = "\x1aE\xdf\xa3 webm-ish bytes " * 100
    sender = send(clients, relay, name, "video/webm", payload)
    assert victim.open(f"{relay.base}/robots.txt") == "text/plain"
    got = victim.evaluate(
        f"fetch('/{name}').then(async r => [r.status, r.headers.get('content-type'),"
        " r.headers.get('content-security-policy'), await r.text()])")
    assert got == [200, "video/webm", "sandbox", payload]
    assert sender.wait(30) == 0
    nothing_registered(relay.base)
