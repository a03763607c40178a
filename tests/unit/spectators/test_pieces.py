"""Pure pieces of the spectator feeds: framing, rate, history, page, send buffer.

Which feed an Accept header gets is in ``tests/unit/web/test_negotiation.py``.
"""

from __future__ import annotations

import json
import re

import pytest

from hoodypipe.spectators import dashboard, sse
from hoodypipe.spectators.history import LastTransfers
from hoodypipe.spectators.rate import RateMeter

# -- SSE framing --


def test_encode_is_one_event_with_one_data_line() -> None:
    block = sse.encode(42, "progress", {"bytes": 5, "reason": "a\nb"})
    text = block.decode()
    assert text.endswith("\n\n")
    lines = text[:-2].split("\n")
    assert lines[0] == "id: 42"
    assert lines[1] == "event: progress"
    assert lines[2].startswith("data: ")
    assert len(lines) == 3  # the newline inside a value is escaped by JSON
    assert json.loads(lines[2][6:]) == {"bytes": 5, "reason": "a\nb"}


def test_encode_with_retry_hint() -> None:
    assert sse.encode(1, "state", {}, retry_ms=2000).startswith(b"retry: 2000\nid: 1\n")


def test_encode_refuses_multiline_event_names() -> None:
    with pytest.raises(ValueError):
        sse.encode(1, "a\nb", {})


def test_heartbeat_is_a_comment() -> None:
    assert sse.HEARTBEAT.startswith(b":")
    assert sse.HEARTBEAT.endswith(b"\n\n")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, None), (b"17", 17), (b" 17 ", 17), (b"", None), (b"abc", None),
     (b"-3", None), (b"9" * 40, None)],
)
def test_parse_last_event_id(raw: bytes | None, expected: int | None) -> None:
    assert sse.parse_last_event_id(raw) == expected


def test_sse_headers() -> None:
    headers = dict(sse.HEADERS)
    assert headers[b"Content-Type"] == b"text/event-stream"
    assert headers[b"Cache-Control"] == b"no-cache"
    assert headers[b"X-Accel-Buffering"] == b"no"
    assert b"Content-Encoding" not in headers


# -- rate meter --


def test_rate_needs_two_samples() -> None:
    meter = RateMeter()
    assert meter.rate() == 0.0
    meter.sample(10.0, 100)
    assert meter.rate() == 0.0


def test_rate_steady() -> None:
    meter = RateMeter(window=2.0)
    for i in range(9):
        meter.sample(i * 0.25, i * 250_000)
    assert meter.rate() == pytest.approx(1_000_000)


def test_rate_follows_a_change_within_the_window() -> None:
    meter = RateMeter(window=1.0)
    t, total = 0.0, 0
    for _ in range(20):  # 5 s at 1 MB/s
        t += 0.25
        total += 250_000
        meter.sample(t, total)
    for _ in range(8):  # then 2 s at 4 MB/s
        t += 0.25
        total += 1_000_000
        meter.sample(t, total)
    assert meter.rate() == pytest.approx(4_000_000)


def test_rate_stall_reads_zero() -> None:
    meter = RateMeter(window=1.0)
    meter.sample(0.0, 0)
    meter.sample(1.0, 1000)
    for i in range(2, 8):
        meter.sample(float(i), 1000)
    assert meter.rate() == 0.0


def test_rate_resets_when_the_counter_goes_back() -> None:
    meter = RateMeter()
    meter.sample(0.0, 0)
    meter.sample(1.0, 5000)
    meter.sample(2.0, 10)  # a new transfer
    assert meter.rate() == 0.0
    meter.sample(3.0, 110)
    assert meter.rate() == pytest.approx(100)


def test_rate_keeps_bounded_samples() -> None:
    meter = RateMeter(window=1e9, max_samples=8)
    for i in range(1000):
        meter.sample(float(i), i)
    assert len(meter._samples) == 8  # noqa: SLF001 - the bound is the point


def test_rate_same_instant_replaces() -> None:
    meter = RateMeter()
    meter.sample(0.0, 0)
    meter.sample(1.0, 10)
    meter.sample(1.0, 20)
    assert meter.rate() == pytest.approx(20)


def test_rate_window_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RateMeter(window=0)


# -- last transfers --


def test_last_transfers_expire_by_age() -> None:
    history = LastTransfers(ttl=100.0, max_count=10)
    history.remember("a", {"ok": True}, now=0.0)
    history.remember("b", {"ok": False}, now=50.0)
    assert history.get("a", now=99.0) == {"ok": True}
    assert history.get("a", now=100.0) is None
    assert history.get("b", now=100.0) == {"ok": False}
    assert history.get("b", now=150.0) is None
    assert len(history) == 0


def test_last_transfers_bounded_by_count_oldest_first() -> None:
    history = LastTransfers(ttl=1e9, max_count=3)
    for i, name in enumerate("abcd"):
        history.remember(name, {"n": i}, now=float(i))
    assert len(history) == 3
    assert history.get("a", now=10.0) is None
    assert history.get("d", now=10.0) == {"n": 3}


def test_last_transfers_update_moves_to_newest() -> None:
    history = LastTransfers(ttl=1e9, max_count=2)
    history.remember("a", {"n": 1}, now=0.0)
    history.remember("b", {"n": 2}, now=1.0)
    history.remember("a", {"n": 3}, now=2.0)  # a is now newest
    history.remember("c", {"n": 4}, now=3.0)  # so b goes
    assert history.get("b", now=3.0) is None
    assert history.get("a", now=3.0) == {"n": 3}


# -- dashboard page --


def test_dashboard_escapes_the_name_and_uses_the_nonce() -> None:
    page = dashboard.render('<img src=x onerror=alert(1)>"&', nonce="N0nce")
    body = page.body.decode()
    assert "<img src=x" not in body
    assert "&lt;img src=x onerror=alert(1)&gt;&quot;&amp;" in body
    headers = dict(page.headers)
    csp = headers[b"Content-Security-Policy"].decode()
    assert "default-src 'none'" in csp
    assert "script-src 'nonce-N0nce'" in csp
    assert "style-src 'nonce-N0nce'" in csp
    assert "connect-src 'self'" in csp
    assert body.count('nonce="N0nce"') == 2  # the one style and the one script
    assert "{{" not in body


def test_dashboard_shows_the_decoded_name_escaped() -> None:
    body = dashboard.render("%3Cimg%20src=x%20onerror=alert(1)%3E", nonce="n").body
    text = body.decode()
    assert "<img src=x" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert dashboard.display_name("caf%C3%A9%20%FF") == "café \ufffd"


def test_dashboard_nonce_is_fresh_per_response() -> None:
    first = dict(dashboard.render("a").headers)[b"Content-Security-Policy"]
    second = dict(dashboard.render("a").headers)[b"Content-Security-Policy"]
    assert first != second


def test_dashboard_is_self_contained() -> None:
    body = dashboard.render("a", nonce="n").body.decode()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", body)
    assert "<link" not in body
    # Server values go in as text, never as markup.
    assert "innerHTML" not in body
    assert "insertAdjacentHTML" not in body
    assert "document.write" not in body
    assert "location.pathname + location.search" in body
    assert "new EventSource(url)" in body


# -- the spectator socket's send buffer --------------------------------------------


def test_limit_send_buffer_on_a_real_socket() -> None:
    import socket

    from hoodypipe.spectators.feed import limit_send_buffer

    class Transport:
        def __init__(self, sock: socket.socket) -> None:
            self.sock = sock

        def getHandle(self) -> socket.socket:
            return self.sock

    a, b = socket.socketpair()
    try:
        assert limit_send_buffer(Transport(a), 16 * 1024)
        # Linux doubles the value for its bookkeeping; either way it is small
        assert a.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) <= 64 * 1024
    finally:
        a.close()
        b.close()


def test_limit_send_buffer_leaves_socketless_transports_alone() -> None:
    from twisted.internet.testing import StringTransport

    from hoodypipe.spectators.feed import limit_send_buffer

    assert not limit_send_buffer(StringTransport(), 16 * 1024)
    assert not limit_send_buffer(object(), 16 * 1024)
