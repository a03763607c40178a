"""
The kit's curl recipes against the real service: per-receiver downloads,
repeated X- headers, boolean query values, GET /api/v1/pipe and the health
document's kit fields.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from pathlib import Path

from tests.kit.clients import Clients, get_json, nothing_registered, wait_until_waiting
from tests.kit.service import Service


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def payload(tmp_path: Path, data: bytes = b"BINARYPAYLOAD") -> Path:
    path = tmp_path / f"payload-{uuid.uuid4().hex[:6]}"
    path.write_bytes(data)
    return path


def test_download_with_a_filename(service: Service, clients: Clients, tmp_path: Path) -> None:
    """The kit's recipe: curl -OJ saves under the name the receiver asked for."""
    name = unique("dl")
    out_dir = tmp_path / "saved"
    out_dir.mkdir()
    receiver = subprocess.Popen(
        ["curl", "-sS", "--max-time", "60", "-OJ", "-D", str(tmp_path / "h"),
         service.url(name, "download=1&filename=report.bin")],
        cwd=out_dir)
    try:
        wait_until_waiting(service.base, name)
        sender = clients.send_file(service.url(name), payload(tmp_path))
        assert sender.wait() == 0 and receiver.wait(60) == 0
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait(5)
    assert (out_dir / "report.bin").read_bytes() == b"BINARYPAYLOAD"
    headers = (tmp_path / "h").read_text()
    assert 'Content-Disposition: attachment; filename="report.bin"' in headers


def test_n2_one_receiver_downloads_the_other_gets_it_inline(
    service: Service, clients: Clients, tmp_path: Path,
) -> None:
    name = unique("split") + "/photo%20one.png"
    inline = clients.receive(service.url(name, "n=2"))
    download = clients.receive(service.url(name, "n=2&download"))
    wait_until_waiting(service.base, name)
    sender = clients.send_file(service.url(name, "n=2"), payload(tmp_path),
                               "-H", "Content-Type: image/png")
    assert sender.wait() == 0 and inline.wait() == 0 and download.wait() == 0
    assert inline.header("Content-Disposition") is None
    assert download.header("Content-Disposition") == 'attachment; filename="photo one.png"'
    assert inline.out.read_bytes() == download.out.read_bytes() == b"BINARYPAYLOAD"
    assert inline.header("Content-Type") == download.header("Content-Type") == "image/png"


def test_n2_download_off_drops_the_senders_attachment_for_one_receiver(
    service: Service, clients: Clients, tmp_path: Path,
) -> None:
    name = unique("inline")
    shown = clients.receive(service.url(name, "n=2&download=0"))
    saved = clients.receive(service.url(name, "n=2&download=Yes"))
    wait_until_waiting(service.base, name)
    sender = clients.send_file(
        service.url(name, "n=2"), payload(tmp_path, b"inline body"),
        "-H", "Content-Type: text/plain",
        "-H", 'Content-Disposition: attachment; filename="leaked.txt"')
    assert sender.wait() == 0 and shown.wait() == 0 and saved.wait() == 0
    assert shown.header("Content-Disposition") is None
    assert saved.header("Content-Disposition") == 'attachment; filename="leaked.txt"'


def test_a_hostile_sender_filename_is_sanitised_and_encoded(
    service: Service, clients: Clients, tmp_path: Path,
) -> None:
    name = unique("evil")
    receiver = clients.receive(service.url(name))
    wait_until_waiting(service.base, name)
    sender = clients.send_file(
        service.url(name), payload(tmp_path),
        "-H", "Content-Disposition: inline; filename*=UTF-8''..%2F..%2F%C3%A9t%C3%A9%01.sh")
    assert sender.wait() == 0 and receiver.wait() == 0
    assert receiver.header("Content-Disposition") == (
        "attachment; filename=\"_t_.sh\"; filename*=UTF-8''%C3%A9t%C3%A9.sh")


def test_every_x_piping_value_arrives_and_the_transfer_id_is_exposed(
    service: Service, clients: Clients, tmp_path: Path,
) -> None:
    name = unique("meta")
    receiver = clients.receive(service.url(name))
    wait_until_waiting(service.base, name)
    sender = clients.send_file(
        service.url(name), payload(tmp_path),
        "-H", "X-Piping: legacy-meta=true", "-H", "X-Piping: second",
        "-H", "X-Hoody-Pipe: build-id=42; commit=abc1234")
    assert sender.wait() == 0 and receiver.wait() == 0
    lines = receiver.header_text().replace("\r\n", "\n").split("\n")
    assert [line for line in lines if line.lower().startswith("x-piping:")] == [
        "X-Piping: legacy-meta=true", "X-Piping: second"]
    assert receiver.header("Access-Control-Expose-Headers") == (
        "X-Hoody-Pipe-Transfer-Id, X-Piping, X-Hoody-Pipe")
    transfer_id = receiver.header("X-Hoody-Pipe-Transfer-Id")
    assert transfer_id and re.fullmatch(r"[0-9a-f]{32}", transfer_id)


def test_progress_and_video_switched_off_are_ordinary_receivers(
    service: Service, clients: Clients, tmp_path: Path,
) -> None:
    for query in ("progress=0", "progress=false", "progress=NO", "video=0", "video=False"):
        name = unique("flag")
        receiver = clients.receive(service.url(name, query), "-H", "Accept: text/html")
        wait_until_waiting(service.base, name)
        sender = clients.send_file(service.url(name), payload(tmp_path))
        assert sender.wait(30) == 0 and receiver.wait(30) == 0, query
        assert receiver.status() == 200
        assert receiver.out.read_bytes() == b"BINARYPAYLOAD", query
    nothing_registered(service.base)


def test_video_from_curl_or_a_media_player_is_the_raw_stream(
    service: Service, clients: Clients, tmp_path: Path,
) -> None:
    for accept in ("*/*", "video/webm,video/*;q=0.9,*/*;q=0.5"):
        name = unique("vlc")
        receiver = clients.receive(service.url(name, "video"), "-H", f"Accept: {accept}")
        wait_until_waiting(service.base, name)
        sender = clients.send_file(service.url(name), payload(tmp_path))
        assert sender.wait(30) == 0 and receiver.wait(30) == 0
        assert receiver.out.read_bytes() == b"BINARYPAYLOAD"


def test_get_api_prefix_without_slash_is_the_index(service: Service, clients: Clients) -> None:
    page = clients.curl(f"{service.base}/api/v1/pipe")
    assert page.wait(30) == 0
    assert page.status() == 200
    assert page.text().startswith("hoodypipe:")
    refused = clients.curl("-X", "POST", "--data-binary", "x", f"{service.base}/api/v1/pipe")
    assert refused.wait(30) == 0
    assert refused.status() == 400
    assert refused.text() == "[ERROR] Cannot send to a reserved path.\n"
    assert get_json(f"{service.base}/api/v1/pipe/health")["waiting"] == 0


def test_health_carries_the_kits_fields(service: Service) -> None:
    before = time.time()
    health = get_json(f"{service.base}/api/v1/pipe/health")
    assert health["service"] == "hoodypipe"
    assert health["pid"] == service.process.pid
    assert health["built"] == health["version"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", health["started"])
    assert isinstance(health["memory"], int)
    assert abs(health["memory"] - service.rss_bytes()) < 8_000_000
    assert isinstance(health["fds"], int) and 3 <= health["fds"] < 200
    fds = len(list(Path(f"/proc/{service.process.pid}/fd").iterdir()))
    assert abs(health["fds"] - fds) <= 3
    assert health["started"] < time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(before + 1))
    for ours in ("status", "version", "uptimeSec", "waiting", "active", "draining"):
        assert ours in health
