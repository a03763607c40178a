"""
Multipart form uploads (``curl -F``) through the real service: only the first
file part reaches the receivers, streamed, with bounded server memory.
"""

from __future__ import annotations

import hashlib
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.kit.clients import Clients, get_json, nothing_registered, wait_until_waiting
from tests.kit.service import Service
from tests.kit.waiting import wait_for

GIB = 1 << 30
RSS_LIMIT = 16_000_000


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_only_the_first_file_part_is_forwarded(
    service: Service, clients: Clients, tmp_path: Path,
) -> None:
    """The kit's recipe: a field, two files; the receiver gets the first file."""
    (tmp_path / "a.txt").write_bytes(b"first-file-content")
    (tmp_path / "b.txt").write_bytes(b"second-file-content")
    name = unique("upload")
    receiver = clients.receive(service.url(name))
    wait_until_waiting(service.base, name)
    sender = clients.curl(
        "-F", "field1=ignored-form-field",
        "-F", f"file=@{tmp_path / 'a.txt'};type=text/plain",
        "-F", f"extra=@{tmp_path / 'b.txt'};type=text/plain",
        service.url(name))
    assert sender.wait() == 0 and receiver.wait() == 0
    assert receiver.out.read_bytes() == b"first-file-content"
    assert receiver.header("Content-Type") == "text/plain"
    assert receiver.header("Content-Disposition") == 'attachment; filename="a.txt"'
    assert receiver.header("Content-Length") is None
    assert sender.text().splitlines()[-1] == "[INFO] Transfer complete."
    status = get_json(service.url(name, "status"))
    assert status["state"] == "complete"
    assert status["bytes"] == len(b"first-file-content")
    assert status["totalBytes"] is None


def test_a_form_with_only_text_sends_the_text(
    service: Service, clients: Clients,
) -> None:
    name = unique("text")
    receiver = clients.receive(service.url(name))
    wait_until_waiting(service.base, name)
    sender = clients.curl("-F", "text=héllo from a form", "-F", "other=x", service.url(name))
    assert sender.wait() == 0 and receiver.wait() == 0
    assert receiver.out.read_bytes() == "héllo from a form".encode()
    assert receiver.header("Content-Type") == "text/plain; charset=utf-8"
    assert receiver.header("Content-Disposition") is None


def test_the_receiver_picks_its_own_name_for_a_form_file(
    service: Service, clients: Clients, tmp_path: Path,
) -> None:
    (tmp_path / "scan.pdf").write_bytes(b"%PDF-1.7")
    name = unique("form-n2")
    kept = clients.receive(service.url(name, "n=2"))
    renamed = clients.receive(service.url(name, "n=2&filename=r%C3%A9sum%C3%A9.pdf"))
    wait_until_waiting(service.base, name)
    sender = clients.curl("-F", f"doc=@{tmp_path / 'scan.pdf'}", service.url(name, "n=2"))
    assert sender.wait() == 0 and kept.wait() == 0 and renamed.wait() == 0
    assert kept.header("Content-Disposition") == 'attachment; filename="scan.pdf"'
    assert renamed.header("Content-Disposition") == (
        "attachment; filename=\"r_sum_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf")
    assert kept.out.read_bytes() == renamed.out.read_bytes() == b"%PDF-1.7"


def test_a_form_without_a_boundary_is_refused_at_once(
    service: Service, clients: Clients,
) -> None:
    sender = clients.curl("-H", "Content-Type: multipart/form-data", "--data-binary", "x",
                          service.url(unique("nob")))
    assert sender.wait(30) == 0
    assert sender.status() == 400
    assert sender.text().startswith("[ERROR] ") and "boundary" in sender.text()
    nothing_registered(service.base)


@pytest.mark.parametrize("body", [
    b"not multipart at all",
    b"--abc\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno file\r\n--abc--\r\n",
    b"--abc\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\ncut",
])
def test_a_malformed_form_fails_the_transfer_cleanly(
    service: Service, clients: Clients, tmp_path: Path, body: bytes,
) -> None:
    name = unique("bad")
    receiver = clients.receive(service.url(name))
    wait_until_waiting(service.base, name)
    (tmp_path / "body").write_bytes(body)
    sender = clients.curl("-H", "Content-Type: multipart/form-data; boundary=abc",
                          "--data-binary", f"@{tmp_path / 'body'}", service.url(name))
    assert sender.wait(30) == 0
    assert sender.text().splitlines()[-1] == "[ERROR] Malformed multipart body."
    code = receiver.wait(30)
    if b"filename" in body:
        assert code != 0  # it was streaming: cut, never a clean-looking end
    else:
        assert code == 0 and receiver.status() == 400
        assert receiver.text() == "[ERROR] Malformed multipart body.\n"
    done = get_json(service.url(name, "status"))
    assert (done["state"], done["reason"]) == ("failed", "Malformed multipart body")


def _warm_up(service: Service, tmp_path: Path) -> None:
    """A small form transfer first, so first-use costs are not counted as growth."""
    (tmp_path / "small").write_bytes(b"w" * 1_000_000)
    name = unique("warm")
    receiver = subprocess.Popen(["curl", "-sS", "--max-time", "30", "-o", "/dev/null",
                                 service.url(name)])
    try:
        wait_until_waiting(service.base, name)
        subprocess.run(["curl", "-sS", "--max-time", "30", "-o", "/dev/null",
                        "-F", f"file=@{tmp_path / 'small'}", service.url(name)],
                       check=True, timeout=40)
        assert receiver.wait(30) == 0
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait(5)


@pytest.mark.slow
def test_a_1_gib_form_upload_streams_with_bounded_memory(
    service: Service, tmp_path: Path,
) -> None:
    big = tmp_path / "big.iso"
    with big.open("wb") as f:
        f.truncate(GIB)  # sparse: curl reads zeros as fast as it can send them
    _warm_up(service, tmp_path)
    before = service.rss_bytes()
    peak = before
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, service.rss_bytes())
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    name = unique("big")
    receiver = subprocess.Popen(
        ["curl", "-sS", "--max-time", "240", "-o", "/dev/null", "-w", "%{size_download}",
         "-D", str(tmp_path / "h"), service.url(name)],
        stdout=subprocess.PIPE, text=True)
    sender = None
    try:
        wait_until_waiting(service.base, name)
        sampler.start()
        started = time.monotonic()
        sender = subprocess.Popen(
            ["curl", "-sS", "--max-time", "240", "-o", str(tmp_path / "status"),
             "-F", f"file=@{big};type=application/zip", service.url(name)])
        # Streaming, not buffering: the receiver is answered while the body is coming.
        wait_for(lambda: (tmp_path / "h").exists() and (tmp_path / "h").stat().st_size > 0,
                 60, "the receiver's response head")
        assert sender.poll() is None
        assert sender.wait(240) == 0
        received, _ = receiver.communicate(timeout=240)
        took = time.monotonic() - started
    finally:
        stop.set()
        for process in (sender, receiver):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(5)
    sampler.join(5)
    assert receiver.returncode == 0
    assert int(received) == GIB
    assert (tmp_path / "status").read_text().splitlines()[-1] == "[INFO] Transfer complete."
    head = (tmp_path / "h").read_text()
    assert "Content-Type: application/zip" in head  # the part's own type, through the allow-list
    assert 'Content-Disposition: attachment; filename="big.iso"' in head
    growth = peak - before
    print(f"1 GiB form upload in {took:.1f} s, server RSS growth {growth / 1e6:.1f} MB")
    assert growth < RSS_LIMIT, f"server RSS grew {growth / 1e6:.1f} MB"


def test_a_form_send_with_sha256_gets_the_receipt_of_the_forwarded_file(
    service: Service, clients: Clients, tmp_path: Path,
) -> None:
    """The receipt is of the file part the receivers got, not of the form body."""
    content = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(200_000))
    (tmp_path / "big.bin").write_bytes(content)  # 6.4 MB: past the hasher's valve
    expected = hashlib.sha256(content).hexdigest()
    name = unique("formsha")
    receiver = clients.receive(service.url(name))
    wait_until_waiting(service.base, name)
    sender = clients.curl(
        "-F", "note=not-forwarded",
        "-F", f"file=@{tmp_path / 'big.bin'};type=application/octet-stream",
        service.url(name, "sha256"))
    assert sender.wait() == 0 and receiver.wait() == 0
    assert hashlib.sha256(receiver.out.read_bytes()).hexdigest() == expected
    assert sender.text().splitlines()[-2:] == [
        f"[INFO] sha256: {expected}", "[INFO] Transfer complete."]
    status = get_json(service.url(name, "status"))
    assert (status["state"], status["bytes"], status["sha256"]) == (
        "complete", len(content), expected)
