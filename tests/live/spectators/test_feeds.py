"""
Spectators against the real server (``twistd hoodypipe``) with real curl.

Senders that must last a while are paced by a small Python writer feeding
``curl -T -``; every wait polls a condition with a deadline and every
process is stopped by the fixtures.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kit.clients import Clients, Curl
from tests.kit.service import Service, running_service
from tests.kit.spectators import Event, dechunk, never_reading_spectator, parse_events
from tests.kit.transfers import Paced
from tests.kit.waiting import wait_for

SHORT = ("--linger", "2", "--progress-interval", "0.25")


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    with running_service(tmp_path, *SHORT) as running:
        yield running


def spectate(clients: Clients, service: Service, name: str, *args: str) -> Curl:
    return clients.curl(*args, service.url(name, "progress"))


def events_of(curl: Curl) -> list[Event]:
    return parse_events(curl.out.read_bytes())[0] if curl.out.exists() else []


def kinds(events: list[Event]) -> list[str]:
    return [e.event or "" for e in events]


def first_event(curl: Curl) -> Event:
    wait_for(lambda: len(events_of(curl)) >= 1, 10, "the first event")
    return events_of(curl)[0]


def get(url: str, method: str = "GET", **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def status_of(service: Service, name: str) -> Any:
    return json.loads(get(service.url(name, "status"))[2])


# -- a whole transfer, as a spectator sees it -------------------------------------


def test_whole_transfer_event_sequence(
    service: Service, clients: Clients, tmp_path: Path
) -> None:
    spectator = spectate(clients, service, "seq")
    assert first_event(spectator).data["state"] == "idle"
    assert spectator.header("Content-Type") == "text/event-stream"
    assert spectator.header("Cache-Control") == "no-cache"
    assert spectator.header("X-Accel-Buffering") == "no"
    assert spectator.header("Content-Encoding") is None

    clients.curl(service.url("seq"))
    sender = Paced(clients, service.url("seq"), 2_000_000, 2.0)
    assert sender.wait() == 0
    assert spectator.wait(20) == 0  # the stream ends after done

    events = events_of(spectator)
    ids = [e.id for e in events]
    assert None not in ids and ids == sorted(ids) and len(set(ids)) == len(ids)
    assert events[0].retry is not None
    states = [e.data["state"] for e in events if e.event == "state"]
    order = ["idle", "waiting", "streaming", "complete"]
    assert [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]] == order
    progress = [e.data for e in events if e.event == "progress"]
    moved = [p["bytes"] for p in progress]
    assert moved == sorted(moved)
    assert moved[-1] == 2_000_000
    done = [e.data for e in events if e.event == "done"]
    assert len(done) == 1
    # about four a second (every 0.25 s) while streaming, plus the last one
    per_second = (len(progress) - 1) / done[0]["durationSec"]
    assert 2.5 <= per_second <= 5.0, (len(progress), done[0]["durationSec"])
    assert all(p["totalBytes"] is None and p["percent"] is None for p in progress)
    assert done[0]["ok"] is True
    assert done[0]["bytes"] == done[0]["bytesTransferred"] == 2_000_000
    assert done[0]["durationSec"] >= 1.5
    assert 0.5 < done[0]["mbps"] < 2.0
    # the end: the last progress, done, then the final state
    assert kinds(events)[-3:] == ["progress", "done", "state"]
    assert events[-1].data["state"] == "complete"


def test_size_on_a_chunked_send_gives_total_percent_eta(
    service: Service, clients: Clients
) -> None:
    spectator = spectate(clients, service, "sized")
    first_event(spectator)
    clients.curl(service.url("sized"))
    sender = Paced(clients, service.url("sized", "size=10M"), 10_000_000, 2.0)
    assert sender.wait() == 0
    assert spectator.wait(20) == 0
    progress = [e.data for e in events_of(spectator) if e.event == "progress"]
    assert all(p["totalBytes"] == 10_000_000 for p in progress)
    middle = [p for p in progress if 0 < p["bytes"] < 10_000_000]
    assert middle, progress
    for p in middle:
        assert p["percent"] == pytest.approx(100 * p["bytes"] / 10_000_000, abs=0.01)
        assert p["etaSec"] is not None and p["etaSec"] >= 0
        assert p["eta"] == p["etaSec"]
    assert progress[-1]["percent"] == 100.0


def test_first_spectator_before_anyone_sees_idle(
    service: Service, clients: Clients
) -> None:
    spectator = spectate(clients, service, "nobody-yet")
    first = first_event(spectator)
    assert first.event == "state"
    assert first.data["state"] == "idle"
    assert first.data["hasSender"] is False and first.data["receivers"] == 0
    assert first.data["lastTransfer"] is None
    assert status_of(service, "nobody-yet")["state"] == "idle"


def test_three_spectators_and_one_receiver(
    service: Service, clients: Clients, tmp_path: Path
) -> None:
    spectators = [spectate(clients, service, "three") for _ in range(3)]
    for spectator in spectators:
        first_event(spectator)
    payload = tmp_path / "payload"
    payload.write_bytes(bytes(range(256)) * 4000)
    receiver = clients.curl(service.url("three"))
    sender = clients.curl("-T", str(payload), service.url("three"))
    assert sender.wait(30) == 0
    assert receiver.wait(30) == 0
    assert receiver.out.read_bytes() == payload.read_bytes()
    for spectator in spectators:
        assert spectator.wait(20) == 0
        done = [e.data for e in events_of(spectator) if e.event == "done"]
        assert len(done) == 1 and done[0]["bytes"] == payload.stat().st_size


def test_spectator_never_takes_the_receiver_slot(
    service: Service, clients: Clients
) -> None:
    spectator = spectate(clients, service, "slot")
    first_event(spectator)
    # With n=1 the one receiver still gets in, and the pipe starts with it.
    receiver = clients.curl(service.url("slot"))
    sender = clients.curl("--data-binary", "hello", service.url("slot"))
    assert sender.wait(20) == 0 and receiver.wait(20) == 0
    assert receiver.out.read_bytes() == b"hello"


# -- limits -----------------------------------------------------------------------------


def test_spectator_over_the_limit_gets_429(tmp_path: Path, clients: Clients) -> None:
    with running_service(tmp_path, "--max-spectators", "3") as service:
        spectators = [spectate(clients, service, "full") for _ in range(3)]
        for spectator in spectators:
            first_event(spectator)
        code, headers, body = get(service.url("full", "progress"))
        assert code == 429
        assert headers["Content-Type"].startswith("text/plain")
        assert body.startswith(b"[ERROR] ") and body.count(b"\n") == 1
        # the snapshot is not a spectator, and another path is fine
        assert get(service.url("full", "status"))[0] == 200
        other = spectate(clients, service, "other")
        assert first_event(other).data["state"] == "idle"
        # a place frees up when a spectator leaves
        spectators[0].kill()

        def admitted() -> bool:
            s, head = open_spectator(service.port, "full")
            s.close()
            return head.startswith(b"HTTP/1.1 200")

        wait_for(admitted, 10, "a place to free up")


def open_spectator(port: int, name: str) -> tuple[socket.socket, bytes]:
    """A raw keep-open ?progress connection; returns it with its first bytes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(f"GET /{name}?progress HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        piece = s.recv(4096)
        if not piece:
            break
        head += piece
    return s, head


def test_the_51st_spectator_at_the_defaults(tmp_path: Path) -> None:
    with running_service(tmp_path) as service:
        sockets: list[socket.socket] = []
        try:
            for _ in range(50):
                s, head = open_spectator(service.port, "fifty")
                sockets.append(s)
                assert head.startswith(b"HTTP/1.1 200")
            s, head = open_spectator(service.port, "fifty")
            sockets.append(s)
            assert head.startswith(b"HTTP/1.1 429")
            while b"\n" not in head.partition(b"\r\n\r\n")[2]:
                head += s.recv(4096)
            assert head.partition(b"\r\n\r\n")[2].startswith(b"[ERROR] ")
        finally:
            for s in sockets:
                s.close()


# -- linger and lastTransfer -------------------------------------------------------------


def test_linger_then_last_transfer(tmp_path: Path, clients: Clients) -> None:
    with running_service(
        tmp_path, "--linger", "3", "--last-transfer-ttl", "6"
    ) as service:
        receiver = clients.curl(service.url("lin"))
        sender = clients.curl("--data-binary", "x" * 1000, service.url("lin"))
        assert sender.wait(20) == 0 and receiver.wait(20) == 0
        # within the linger: the missed done, then the final state, then the end
        late = spectate(clients, service, "lin")
        assert late.wait(10) == 0
        events = events_of(late)
        assert kinds(events) == ["done", "state"]
        assert events[0].data["ok"] is True and events[0].data["bytes"] == 1000
        assert events[1].data["state"] == "complete"
        assert status_of(service, "lin")["state"] == "complete"
        # a reconnect that already has that done gets 204, so EventSource stops
        code, _, body = get(service.url("lin", "progress"),
                            **{"Last-Event-ID": str(events[0].id)})
        assert code == 204 and body == b""
        # after the linger: idle, with the result as lastTransfer
        wait_for(lambda: status_of(service, "lin")["state"] == "idle", 10, "idle")
        snapshot = status_of(service, "lin")
        assert snapshot["lastTransfer"]["ok"] is True
        assert snapshot["lastTransfer"]["bytes"] == 1000
        watcher = spectate(clients, service, "lin")
        state = first_event(watcher)
        assert state.data["state"] == "idle"
        assert state.data["lastTransfer"]["transferId"] == events[0].data["transferId"]
        watcher.kill()
        # and past its age it is gone
        wait_for(lambda: status_of(service, "lin")["lastTransfer"] is None, 10,
                 "lastTransfer to expire")


def test_failed_transfer_when_the_sender_is_killed(
    service: Service, clients: Clients
) -> None:
    spectator = spectate(clients, service, "boom")
    first_event(spectator)
    clients.curl(service.url("boom"))
    sender = Paced(clients, service.url("boom"), 50_000_000, 20.0)
    wait_for(lambda: any(e.event == "progress" and e.data["bytes"] > 0
                         for e in events_of(spectator)), 15, "bytes to flow")
    sender.kill()
    assert spectator.wait(20) == 0
    events = events_of(spectator)
    done = [e.data for e in events if e.event == "done"]
    assert len(done) == 1
    assert done[0]["ok"] is False and done[0]["state"] == "failed"
    assert done[0]["reason"] == "Sender disconnected"
    # the end reads as for a complete transfer: done, then the final state
    assert kinds(events)[-2:] == ["done", "state"]
    assert events[-1].data["state"] == "failed"
    assert done[0]["duration"] == round(done[0]["durationSec"] * 1000)


# -- snapshot and negotiation -----------------------------------------------------------


def test_status_head_and_accept_json(service: Service, clients: Clients) -> None:
    code, headers, body = get(service.url("snap", "status"))
    assert code == 200
    assert headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "no-store"
    snapshot = json.loads(body)
    assert snapshot["state"] == "idle" and snapshot["bytes"] == 0

    code, headers, body = get(service.url("snap", "status"), method="HEAD")
    assert code == 200 and body == b""
    assert headers["Cache-Control"] == "no-store"
    assert headers["Content-Type"] == "application/json"

    code, headers, body = get(service.url("snap", "progress"),
                              Accept="application/json")
    assert code == 200
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["state"] == "idle"

    code, headers, body = get(service.url("snap", "progress"),
                              Accept="text/html,application/xhtml+xml,*/*;q=0.8")
    assert code == 200
    assert headers["Content-Type"].startswith("text/html")
    assert "nonce-" in headers["Content-Security-Policy"]

    # mid-transfer the snapshot has the live numbers; no slot is taken
    clients.curl(service.url("snap"))
    sender = Paced(clients, service.url("snap", "size=4M"), 4_000_000, 3.0)
    wait_for(lambda: status_of(service, "snap")["bytes"] > 0, 15, "bytes to flow")
    live = status_of(service, "snap")
    assert live["state"] == "streaming"
    assert live["totalBytes"] == 4_000_000 and live["percent"] is not None
    assert live["hasSender"] is True and live["receivers"] == 1
    assert sender.wait() == 0


# -- slow and stalled spectators -----------------------------------------------------------


def timed_big_transfer(service: Service, name: str, size: int) -> tuple[float, int]:
    """Send ``size`` zero bytes as fast as possible; (seconds, peak RSS growth)."""
    before = service.rss_bytes()
    start = time.monotonic()
    receiver = subprocess.Popen(
        ["curl", "-sS", "--max-time", "60", service.url(name), "-o", "/dev/null",
         "-w", "%{size_download}"], stdout=subprocess.PIPE,
    )
    sender = subprocess.Popen(
        f"head -c {size} /dev/zero | curl -sS --max-time 60 -T - "
        f"{service.url(name)} -o /dev/null", shell=True,
    )
    peak = before
    try:
        deadline = time.monotonic() + 60
        while receiver.poll() is None and time.monotonic() < deadline:
            peak = max(peak, service.rss_bytes())
            time.sleep(0.02)
        out, _ = receiver.communicate(timeout=5)
        assert sender.wait(10) == 0
    finally:
        for process in (receiver, sender):
            if process.poll() is None:
                process.kill()
                process.wait(5)
    assert int(out) == size
    return time.monotonic() - start, peak - before


def test_never_reading_spectator_neither_slows_nor_bloats(tmp_path: Path) -> None:
    size = 300_000_000
    with running_service(tmp_path, "--progress-interval", "0.005") as service:
        alone, _ = timed_big_transfer(service, "warm", size)
        alone = min(alone, timed_big_transfer(service, "warm2", size)[0])
        stuck = never_reading_spectator(service.port, "big")
        try:
            watched, growth = timed_big_transfer(service, "big", size)
        finally:
            stuck.close()
    assert watched < alone * 3 + 1.0, (watched, alone)
    assert growth < 32_000_000, growth


def test_a_spectator_that_stays_unwritable_is_dropped(
    tmp_path: Path, clients: Clients
) -> None:
    # 200 progress events a second fill a never-read socket within seconds;
    # --heartbeat-interval 0.5 makes the stall bound (two heartbeats) 1 s.
    with running_service(
        tmp_path, "--progress-interval", "0.005", "--heartbeat-interval", "0.5"
    ) as service:
        stuck = never_reading_spectator(service.port, "stall")
        try:
            clients.curl(service.url("stall"))
            sender = Paced(clients, service.url("stall"), 2_400_000, 12.0)
            wait_for(lambda: "dropping spectator of stall" in service.log(), 11,
                     "the stuck spectator to be dropped")
            # the transfer carries on regardless
            moved = status_of(service, "stall")["bytes"]
            assert status_of(service, "stall")["state"] == "streaming"
            wait_for(lambda: status_of(service, "stall")["bytes"] > moved, 5,
                     "bytes to keep flowing")
            sender.kill()
            # the dropped connection was cut, not ended like a finished stream
            received = b""
            stuck.settimeout(5)
            try:
                while piece := stuck.recv(65536):
                    received += piece
            except ConnectionResetError:
                pass
            assert received.startswith(b"HTTP/1.1 200")
            assert not received.endswith(b"0\r\n\r\n")
        finally:
            stuck.close()
        # a healthy spectator still gets the path: the killed transfer
        # lingers, so the done it missed comes first
        healthy = spectate(clients, service, "stall")
        missed = first_event(healthy)
        assert missed.event == "done" and missed.data["state"] == "failed"


def test_chunked_sse_framing_on_the_wire(service: Service) -> None:
    s, head = open_spectator(service.port, "wire")
    try:
        assert b"Transfer-Encoding: chunked" in head
        body = head.partition(b"\r\n\r\n")[2]
        deadline = time.monotonic() + 10
        while b"\n\n" not in dechunk(body)[0] and time.monotonic() < deadline:
            body += s.recv(4096)
        text = dechunk(body)[0].decode()
        assert text.startswith("retry: ")
        assert "\nid: " in text and "\nevent: state\ndata: {" in text
    finally:
        s.close()
