"""The Notifier as the registry sees it: in memory, on a Clock, with StubTreq."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock
from twisted.logger import LogEvent, LogLevel
from zope.interface.verify import verifyObject

from hoodypipe.common.wire import done_event
from hoodypipe.core.events import ITransferObserver, PipeStatus, TransferResult
from hoodypipe.notify.notifier import Notifier
from hoodypipe.settings import Settings
from tests.kit.notify import HANG, Answer, RecordingReceiver, stub_client

RESULT = TransferResult(
    name="nightly", transfer_id="abc123", ok=True, bytes=10, total_bytes=10,
    started_at=5.0, ended_at=7.0, receivers=1,
)
FAILED = TransferResult(
    name="nightly", transfer_id="def456", ok=False, bytes=3, total_bytes=10,
    started_at=5.0, ended_at=7.0, receivers=1, reason="Sender disconnected",
)


def make(settings: Settings, answers: list[Answer] | None = None, **kw):  # type: ignore[no-untyped-def]
    clock = Clock()
    clock.advance(1_700_000_000)
    receiver = RecordingReceiver(answers or [202], clock.seconds)
    client, stub = stub_client(receiver)
    notifier = Notifier(clock, settings, client, hostname="relay-1", **kw)
    return clock, receiver, stub, notifier


HOOKS = Settings(
    on_done=("http://hooks.example/one", "http://hooks.example/two"),
    pagerduty_routing_key="KEY",
    pagerduty_url="http://pd.example/v2/enqueue",
    public_url="https://pipe.example.com",
    hook_timeout=2.0,
    hook_retries=3,
)


def test_is_a_transfer_observer() -> None:
    clock, receiver, stub, notifier = make(HOOKS)
    assert verifyObject(ITransferObserver, notifier)
    notifier.pipe_changed(PipeStatus(name="x", state="waiting"))
    clock.advance(1)
    assert receiver.received == []


def test_transfer_done_returns_before_sending_anything() -> None:
    clock, receiver, stub, notifier = make(HOOKS)
    notifier.transfer_done(RESULT)
    assert receiver.received == []
    assert notifier.pending == 3
    clock.advance(0)
    stub.flush()
    assert sorted(r.path for r in receiver.received) == [
        "/one", "/two", "/v2/enqueue",
    ]
    assert notifier.pending == 0
    assert notifier.delivered == 3


def test_webhook_and_pagerduty_bodies() -> None:
    clock, receiver, stub, notifier = make(HOOKS)
    notifier.transfer_done(FAILED)
    clock.advance(0)
    by_path = {r.path: r for r in receiver.received}
    hook = by_path["/one"].json()
    assert hook == {
        **done_event(FAILED),
        "name": "nightly",
        "server": "https://pipe.example.com",
        "progressUrl": "https://pipe.example.com/api/v1/pipe/nightly?progress",
    }
    assert by_path["/two"].json() == hook
    event = by_path["/v2/enqueue"].json()
    assert by_path["/v2/enqueue"].headers["content-type"] == "application/json"
    assert event["routing_key"] == "KEY"
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == "def456"
    assert event["payload"]["severity"] == "error"
    assert event["payload"]["source"] == "https://pipe.example.com"
    assert event["payload"]["timestamp"].startswith("2023-11-14T22:13:20")


def test_source_is_the_hostname_without_a_public_url() -> None:
    settings = Settings(pagerduty_routing_key="KEY", pagerduty_url="http://pd/x")
    clock, receiver, stub, notifier = make(settings)
    notifier.transfer_done(RESULT)
    clock.advance(0)
    (sent,) = receiver.received
    event = sent.json()
    assert event["payload"]["source"] == "relay-1"
    assert "links" not in event


def test_nothing_configured_sends_nothing() -> None:
    clock, receiver, stub, notifier = make(Settings())
    notifier.transfer_done(RESULT)
    clock.advance(1)
    assert receiver.received == [] and notifier.pending == 0


def test_filters_apply() -> None:
    settings = Settings(
        on_done=("http://h/hook",), on_done_match="night*", on_done_failed_only=True
    )
    clock, receiver, stub, notifier = make(settings)
    notifier.transfer_done(RESULT)  # complete: filtered out
    notifier.transfer_done(TransferResult(
        name="daily", transfer_id="x", ok=False, bytes=0, total_bytes=None,
        started_at=0, ended_at=1, receivers=0, reason="Idle timeout",
    ))  # name does not match
    notifier.transfer_done(FAILED)
    clock.advance(0)
    assert [r.json()["transferId"] for r in receiver.received] == ["def456"]


def test_the_pipe_name_cannot_steer_the_request() -> None:
    settings = Settings(on_done=("http://hooks.example/hook",))
    clock, receiver, stub, notifier = make(settings)
    evil = TransferResult(
        name="http://evil.example/x?a=1#", transfer_id="t", ok=True, bytes=0,
        total_bytes=0, started_at=0, ended_at=0, receivers=1,
    )
    notifier.transfer_done(evil)
    clock.advance(0)
    (sent,) = receiver.received
    assert sent.path == "/hook"
    assert sent.headers["host"] == "hooks.example"
    assert sent.json()["name"] == "http://evil.example/x?a=1#"


def test_retries_follow_the_settings() -> None:
    clock, receiver, stub, notifier = make(
        Settings(on_done=("http://h/hook",), hook_retries=3), [500, 500, 202]
    )
    notifier.transfer_done(RESULT)
    clock.pump([0, 1, 2])
    assert len(receiver.received) == 3
    assert notifier.delivered == 1 and notifier.failed == 0


def test_in_flight_deliveries_are_capped(logged: list[LogEvent]) -> None:
    settings = Settings(on_done=("http://h/hook",), hook_timeout=30.0)
    clock, receiver, stub, notifier = make(settings, [HANG], max_pending=2)
    for _ in range(5):
        notifier.transfer_done(RESULT)
    assert notifier.pending == 2
    assert notifier.dropped == 3
    drops = [e for e in logged if e.get("log_level") == LogLevel.warn
             and "dropping" in e["log_format"]]
    assert len(drops) == 3
    assert drops[0]["pending"] == 2 and drops[0]["kind"] == "webhook"
    clock.advance(0)
    stub.flush()
    assert len(receiver.received) == 2


def test_failures_are_logged_with_their_reason(logged: list[LogEvent]) -> None:
    clock, receiver, stub, notifier = make(
        Settings(on_done=("http://h/hook",), hook_retries=2, hook_timeout=1.0),
        [(503, {"Retry-After": "1"})],
    )
    notifier.transfer_done(RESULT)
    clock.pump([0, 1, 1])
    warned = [e for e in logged if e.get("log_level") == LogLevel.warn]
    assert [e["reason"] for e in warned] == [
        "HTTP 503: nope: try later", "HTTP 503: nope: try later",
    ]
    assert warned[-1]["why"] == "no tries left"
    assert notifier.failed == 1


def test_stop_abandons_what_is_in_flight() -> None:
    clock, receiver, stub, notifier = make(HOOKS, [500])
    notifier.transfer_done(RESULT)
    clock.advance(0)
    assert notifier.pending == 3
    notifier.stop()
    assert notifier.pending == 0
    clock.pump([1] * 20)
    assert len(receiver.received) == 3


def test_transfer_done_never_raises(
    logged: list[LogEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, receiver, stub, notifier = make(HOOKS)

    def broken(result: TransferResult) -> list[object]:
        raise RuntimeError("boom")

    monkeypatch.setattr(notifier, "deliveries_for", broken)
    notifier.transfer_done(RESULT)
    assert any(e.get("log_failure") is not None for e in logged)
