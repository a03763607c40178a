"""
The kit's browser flows in Debian's headless Chromium against the real
service: the ``?video`` player playing a real VP8 WebM stream that ffmpeg
encodes live into ``curl -T -``, and ``/noscript`` sending a file and a text
with JavaScript turned off to real curl receivers.

Screenshots (phone 390x844 and desktop 1280x800) go to ``test-artifacts/``
for a person to look at.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kit.browser import ARTIFACTS, Watched, launched_chromium
from tests.kit.clients import Clients, nothing_registered, wait_until_waiting
from tests.kit.service import Service
from tests.kit.waiting import wait_for

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    yield from launched_chromium()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- the video player ---------------------------------------------------------------------


class LiveEncode:
    """ffmpeg encoding a test pattern in real time, piped into ``curl -T -``."""

    def __init__(self, clients: Clients, url: str, seconds: float) -> None:
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg is None:
            pytest.skip("ffmpeg is not installed (apt-get install ffmpeg)")
        self.encoder = subprocess.Popen(
            [ffmpeg, "-hide_banner", "-loglevel", "error", "-re",
             "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25",
             "-t", str(seconds), "-c:v", "libvpx", "-deadline", "realtime",
             "-cpu-used", "8", "-b:v", "600k", "-f", "webm", "-"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self.encoder.stdout is not None
        self.curl = clients.curl("-T", "-", url, stdin=self.encoder.stdout)
        self.encoder.stdout.close()

    def wait(self) -> int:
        try:
            self.encoder.wait(60)
        finally:
            if self.encoder.poll() is None:
                self.encoder.kill()
                self.encoder.wait(5)
        return self.curl.wait(60)

    def kill(self) -> None:
        for process in (self.encoder, self.curl.process):
            if process.poll() is None:
                process.kill()
            process.wait(5)


def video_state(page: Watched) -> dict[str, Any]:
    state: dict[str, Any] = page.eval(
        "({ready: video.readyState, time: video.currentTime, muted: video.muted,"
        "  paused: video.paused, width: video.videoWidth})")
    return state


def test_the_player_plays_a_live_webm_stream(
    service: Service, clients: Clients, chromium: Any,
) -> None:
    name = unique("cam")
    url = service.url(name, "video&n=2")
    phone = Watched(chromium, url)
    desktop_context = chromium.new_context(viewport=DESKTOP)
    desktop = desktop_context.new_page()
    desktop_errors: list[str] = []
    desktop.on("pageerror", lambda e: desktop_errors.append(str(e)))
    encode = None
    try:
        desktop.goto(url, wait_until="domcontentloaded", timeout=15_000)
        phone.wait_text("#status", "Waiting for stream…")
        # Both players are waiting as receivers, and the pages took no slot.
        wait_until_waiting(service.base, name)
        ARTIFACTS.mkdir(exist_ok=True)
        phone.page.screenshot(path=str(ARTIFACTS / "video-phone-waiting.png"))

        encode = LiveEncode(clients, service.url(name, "n=2"), seconds=8)
        phone.wait_text("#status", "Connected")
        assert desktop.text_content("#status") == "Connected"
        wait_for(lambda: video_state(phone)["ready"] >= 2 and video_state(phone)["time"] > 0.5,
                 20, "the phone's video to play")
        first = video_state(phone)
        assert first["width"] == 640 and first["muted"] and not first["paused"]
        wait_for(lambda: video_state(phone)["time"] > first["time"] + 1.0, 10,
                 "the play head to advance")
        wait_for(lambda: desktop.evaluate("video.currentTime") > 1.0, 10,
                 "the desktop video to play")
        assert phone.page.is_visible("#unmute")
        phone.page.screenshot(path=str(ARTIFACTS / "video-phone-playing.png"))
        desktop.screenshot(path=str(ARTIFACTS / "video-desktop-playing.png"))

        phone.page.click("#unmute")
        assert video_state(phone)["muted"] is False
        assert not phone.page.is_visible("#unmute")

        assert encode.wait() == 0
        assert "[INFO] Transfer complete." in encode.curl.text()
        phone.wait_text("#status", "Stream ended", timeout=20)
        wait_for(lambda: desktop.text_content("#status") == "Stream ended", 20,
                 "the desktop player to see the end")
        wait_for(lambda: video_state(phone)["time"] > 6.0, 20, "playback to near the end")
        assert phone.errors == [] and desktop_errors == []
        nothing_registered(service.base)
    finally:
        if encode is not None:
            encode.kill()
        phone.close()
        desktop_context.close()


def test_the_player_reports_a_stream_it_cannot_play(
    service: Service, clients: Clients, chromium: Any, tmp_path: Path,
) -> None:
    name = unique("notvideo")
    page = Watched(chromium, service.url(name, "video"))
    try:
        page.wait_text("#status", "Waiting for stream…")
        wait_until_waiting(service.base, name)
        text = tmp_path / "notes.txt"
        text.write_text("just some text, not a video\n" * 10)
        sender = clients.send_file(service.url(name), text)
        page.wait_text("#message", "Not a video stream")
        assert page.text("#status") == "Stream ended"
        assert service.url(name) in page.text("#detail")
        sender.wait(30)
    finally:
        page.close()


# -- /noscript with JavaScript off ----------------------------------------------------------


def no_js_page(chromium: Any) -> Any:
    context = chromium.new_context(java_script_enabled=False, viewport=PHONE,
                                   device_scale_factor=2)
    return context, context.new_page()


def test_noscript_sends_a_file_with_javascript_off(
    service: Service, clients: Clients, chromium: Any, tmp_path: Path,
) -> None:
    name = unique("nojs") + "/files"
    upload = tmp_path / "holiday photo.jpg"
    upload.write_bytes(bytes(range(256)) * 1000)
    context, page = no_js_page(chromium)
    try:
        page.goto(service.base + "/", timeout=15_000)
        assert page.is_visible("noscript a[href='/noscript']")  # scripts really are off
        page.goto(service.base + "/noscript", timeout=15_000)
        page.fill("#path", name + " !bad")
        page.check("input[name=mode][value=file]")
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/noscript?path=" in url, timeout=15_000)
        assert page.input_value("#path") == name + "bad"
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "noscript-phone-file.png"), full_page=True)
        page.fill("#path", name)  # the name typed above, without the dropped characters
        page.click("text=Use this pipe")
        wanted = f"/noscript?path={name.replace('/', '%2F')}&mode=file"
        page.wait_for_url(lambda url: url.endswith(wanted), timeout=15_000)

        receiver = clients.receive(service.url(name))
        wait_until_waiting(service.base, name)
        page.set_input_files("#file", str(upload))
        page.click("button.primary")
        assert receiver.wait(60) == 0
        assert receiver.out.read_bytes() == upload.read_bytes()
        assert receiver.header("Content-Disposition") == (
            'attachment; filename="holiday photo.jpg"')
        assert receiver.header("Content-Type") == "image/jpeg"
        wait_for(lambda: "[INFO] Transfer complete." in (page.text_content("body") or ""),
                 20, "the sender's status lines in the browser")
    finally:
        context.close()


def test_noscript_sends_text_with_javascript_off(
    service: Service, clients: Clients, chromium: Any,
) -> None:
    name = unique("nojs-text")
    context, page = no_js_page(chromium)
    try:
        page.goto(f"{service.base}/api/v1/pipe/noscript?path={name}&mode=text",
                  timeout=15_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "noscript-phone-text.png"), full_page=True)
        receiver = clients.receive(service.url(name))
        wait_until_waiting(service.base, name)
        message = "Grüße from a browser without JavaScript\nsecond line"
        page.fill("#text", message)
        page.click("button.primary")
        assert receiver.wait(60) == 0
        assert receiver.out.read_bytes().replace(b"\r\n", b"\n") == message.encode()
        assert receiver.header("Content-Type") == "text/plain; charset=utf-8"
        assert receiver.header("Content-Disposition") is None
        wait_for(lambda: "[INFO] Transfer complete." in (page.text_content("body") or ""),
                 20, "the sender's status lines in the browser")
    finally:
        context.close()
