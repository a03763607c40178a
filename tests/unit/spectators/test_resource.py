"""The spectators' HTTP face in memory: snapshot, negotiation, HEAD."""

from __future__ import annotations

import json

import pytest

from tests.kit.spectators import FAST, Server, whole_transfer

# -- snapshot, negotiation, HEAD --


def test_status_snapshot() -> None:
    server = Server(FAST)
    server.registry.streaming("p", server.clock, total_bytes=1000)
    server.registry.moved("p", 250)
    server.advance(1.0)
    c = server.get("/p?status")
    assert c.code == 200
    assert c.header("Content-Type") == "application/json"
    assert c.header("Cache-Control") == "no-store"
    body = json.loads(c.body)
    assert body["state"] == "streaming"
    assert body["bytes"] == body["bytesTransferred"] == 250
    assert body["percent"] == 25.0
    for key in ("state", "hasSender", "receivers", "activeReceivers", "totalReceivers",
                "bytes", "bytesTransferred", "totalBytes", "percent", "mbps", "speed",
                "etaSec", "eta", "elapsedSec", "elapsed", "reason", "transferId",
                "sha256", "lastTransfer"):
        assert key in body
    assert server.observer.watched_paths == 0  # a snapshot watches nothing


def test_status_never_used_name_is_idle() -> None:
    body = json.loads(Server().get("/never-used?status").body)
    assert body["state"] == "idle"
    assert body["bytes"] == 0


def test_head_status_is_headers_only() -> None:
    server = Server()
    get = server.get("/p?status")
    head = server.get("/p?status", method="HEAD")
    assert head.code == 200
    assert head.header("Cache-Control") == "no-store"
    assert head.header("Content-Type") == "application/json"
    assert head.header("Content-Length") == str(len(get.body))
    assert head.raw.endswith(b"\r\n\r\n")
    assert head.raw.partition(b"\r\n\r\n")[2] == b""


def test_status_wins_over_progress() -> None:
    server = Server()
    c = server.get("/p?progress&status")
    assert c.header("Content-Type") == "application/json"


def test_accept_json_gives_the_snapshot() -> None:
    server = Server()
    c = server.get("/p?progress", Accept="application/json")
    assert c.header("Content-Type") == "application/json"
    assert c.header("Cache-Control") == "no-store"
    assert json.loads(c.body)["state"] == "idle"


def test_accept_html_gives_the_dashboard() -> None:
    server = Server()
    c = server.get("/p?progress", Accept="text/html,*/*;q=0.8")
    assert c.code == 200
    assert c.header("Content-Type") == "text/html; charset=utf-8"
    csp = c.header("Content-Security-Policy") or ""
    nonce = csp.split("'nonce-")[1].split("'")[0]
    assert f'nonce="{nonce}"' in c.body.decode()
    assert server.observer.watched_paths == 0


def test_dashboard_snapshot_during_linger_reads_complete() -> None:
    server = Server(FAST)
    whole_transfer(server)
    body = json.loads(server.get("/p?status").body)
    assert body["state"] == "complete"
    assert body["bytes"] == 2_000_000
    assert body["elapsedSec"] == pytest.approx(2.0)
    assert body["lastTransfer"]["ok"] is True
