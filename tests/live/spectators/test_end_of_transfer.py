"""
How a transfer's end reads on the wire, for the Hoody pipe kit's clients and
ours: real ``twistd hoodypipe``, real curl reading the event stream.

At the end: the last ``progress``, then ``done``, then the final ``state``,
so a client that stops at the first terminal event (the kit's ``hoody pipe
progress --until complete``) has the ``done`` and prints its summary. The
kit's ``duration`` in ``done`` is whole milliseconds, rounded to the nearest
from our ``durationSec`` (seconds). A failed transfer's end is checked in
``test_feeds.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kit.clients import Clients, Curl
from tests.kit.service import Service, running_service
from tests.kit.spectators import Event, parse_events
from tests.kit.transfers import Paced
from tests.kit.waiting import wait_for

TERMINAL = ("complete", "failed")


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    with running_service(tmp_path, "--linger", "30", "--progress-interval", "0.25") as s:
        yield s


def events_of(curl: Curl) -> list[Event]:
    return parse_events(curl.out.read_bytes())[0] if curl.out.exists() else []


def first_terminal(events: list[Event]) -> Event:
    """Where a client stopping at the first terminal event stops."""
    for event in events:
        if event.event == "done" or (
            event.event == "state" and event.data["state"] in TERMINAL
        ):
            return event
    raise AssertionError(f"no terminal event in {[e.event for e in events]}")


def assert_duration_in_milliseconds(done: dict[str, object]) -> None:
    seconds, millis = done["durationSec"], done["duration"]
    assert isinstance(seconds, float | int) and isinstance(millis, int), done
    assert not isinstance(millis, bool)
    assert millis == round(seconds * 1000), done


def test_a_complete_transfer_ends_with_progress_done_state(
    service: Service, clients: Clients
) -> None:
    spectator = clients.curl(service.url("kit-end", "progress"))
    wait_for(lambda: len(events_of(spectator)) >= 1, 10, "the first event")
    receiver = clients.curl(service.url("kit-end"))
    sender = Paced(clients, service.url("kit-end"), 1_500_000, 1.5)
    assert sender.wait() == 0 and receiver.wait(20) == 0
    assert spectator.wait(20) == 0  # the stream ends after the final state

    events = events_of(spectator)
    assert [e.event for e in events][-3:] == ["progress", "done", "state"]
    progress, done, state = events[-3:]
    assert progress.data["bytes"] == done.data["bytes"] == 1_500_000
    assert done.data["state"] == state.data["state"] == "complete"
    assert progress.id is not None and done.id is not None and state.id is not None
    assert progress.id < done.id < state.id
    assert first_terminal(events) is done
    assert_duration_in_milliseconds(done.data)
    assert 1.0 <= done.data["durationSec"] < 30
    assert done.data["duration"] >= 1000


def test_a_latecomer_in_the_linger_gets_done_then_state(
    service: Service, clients: Clients, tmp_path: Path
) -> None:
    payload = tmp_path / "payload"
    payload.write_bytes(b"k" * 4000)
    receiver = clients.curl(service.url("kit-late"))
    sender = clients.curl("-T", str(payload), service.url("kit-late"))
    assert sender.wait(20) == 0 and receiver.wait(20) == 0
    late = clients.curl(service.url("kit-late", "progress"))
    assert late.wait(10) == 0
    events = events_of(late)
    assert [e.event for e in events] == ["done", "state"]
    done, state = events
    assert done.retry is not None  # the first event of a stream carries the hint
    assert done.data["ok"] is True and done.data["bytes"] == 4000
    assert state.data["state"] == "complete"
    assert_duration_in_milliseconds(done.data)
