"""ResultStore: lastTransfer rows in a real sqlite3 file, written by the real
worker thread, read back by a second store as a restarted server would.

Time is a ``Clock`` (the rows' ages), threads are real (the writes).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs

from hoodypipe.spectators.history import LastTransfers
from hoodypipe.spectators.store import FILE_NAME, ResultStore

TTL = 3600.0
NOW = 1_800_000_000.0


def body(n: int) -> dict[str, Any]:
    return {"state": "complete", "ok": True, "bytes": n, "sha256": "ab" * 32}


Make = Callable[..., tuple[ResultStore, Clock]]


@pytest_twisted.async_yield_fixture
async def make(tmp_path: Path) -> AsyncIterator[Make]:
    """Started stores on ``tmp_path/state`` (or another dir); all stopped at the end."""
    started: list[ResultStore] = []

    def start(directory: Path | None = None, ttl: float = TTL, max_count: int = 100,
              now: float = NOW) -> tuple[ResultStore, Clock]:
        clock = Clock()
        clock.advance(now)
        store = ResultStore(reactor, clock, str(directory or tmp_path / "state"),  # type: ignore[arg-type]
                            ttl, max_count, lock_timeout=0.2)
        store.startService()
        started.append(store)
        return store, clock

    yield start
    for store in started:
        if store.running:
            await store.stopService()


def rows(directory: Path) -> list[tuple[str, float]]:
    with sqlite3.connect(directory / FILE_NAME) as connection:
        return connection.execute(
            "SELECT name, stored_at FROM last_transfer ORDER BY stored_at").fetchall()


@contextmanager
def store_errors() -> Iterator[list[dict[str, Any]]]:
    with capturedLogs() as events:
        found: list[dict[str, Any]] = []
        yield found
        found.extend(e for e in events if "results store" in e.get("log_format", "")
                     and e["log_level"] == LogLevel.error)


@pytest_twisted.ensureDeferred
async def test_rows_written_are_read_back_by_the_next_server(
    make: Make, tmp_path: Path
) -> None:
    store, _ = make()
    assert store.load(NOW) == []
    store.save("a", NOW - 20, body(1))
    store.save("b", NOW - 10, body(2))
    store.save("a", NOW - 5, body(3))  # the same path again: one row, the newest
    await store.stopService()
    assert rows(tmp_path / "state") == [("b", NOW - 10), ("a", NOW - 5)]
    again, _ = make()
    assert again.load(NOW) == [("b", NOW - 10, body(2)), ("a", NOW - 5, body(3))]


@pytest_twisted.ensureDeferred
async def test_expired_rows_are_neither_read_back_nor_kept(
    make: Make, tmp_path: Path
) -> None:
    store, _ = make(ttl=100)
    store.save("old", NOW - 150, body(1))
    store.save("young", NOW - 50, body(2))
    await store.flushed()
    assert store.load(NOW) == [("young", NOW - 50, body(2))]
    store.save("new", NOW, body(3))  # every write also drops what has expired
    await store.flushed()
    assert [name for name, _ in rows(tmp_path / "state")] == ["young", "new"]


@pytest_twisted.ensureDeferred
async def test_the_count_bound_keeps_the_newest(make: Make, tmp_path: Path) -> None:
    store, _ = make(max_count=3)
    for i in range(6):
        store.save(f"p{i}", NOW - 60 + i, body(i))
        await store.flushed()
    assert [name for name, _ in rows(tmp_path / "state")] == ["p3", "p4", "p5"]
    assert [name for name, _, _ in store.load(NOW)] == ["p3", "p4", "p5"]


@pytest_twisted.ensureDeferred
async def test_rows_that_come_while_writing_are_coalesced(make: Make) -> None:
    store, _ = make()
    for i in range(50):
        store.save(f"p{i % 5}", NOW + i, body(i))
    await store.flushed()
    assert store.writes <= 2  # the first row, then everything that came meanwhile
    assert [(n, b["bytes"]) for n, _, b in store.load(NOW + 60)] == [
        ("p0", 45), ("p1", 46), ("p2", 47), ("p3", 48), ("p4", 49)]


@pytest_twisted.ensureDeferred
async def test_stopping_writes_what_is_pending_first(make: Make, tmp_path: Path) -> None:
    store, _ = make()
    for i in range(20):
        store.save(f"p{i}", NOW + i, body(i))
    await store.stopService()
    assert len(rows(tmp_path / "state")) == 20


@pytest_twisted.ensureDeferred
async def test_a_corrupt_file_is_logged_once_and_left_alone(
    make: Make, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    garbage = b"this is not a database, it is a note someone left here\n" * 100
    (state / FILE_NAME).write_bytes(garbage)
    with store_errors() as errors:
        store, _ = make()
        assert store.load(NOW) == []
        for i in range(3):
            store.save(f"p{i}", NOW, body(i))
            await store.flushed()
    assert len(errors) == 1, errors
    assert "DatabaseError" in errors[0]["why"]
    assert store.trouble is not None and store.writes == 0
    assert (state / FILE_NAME).read_bytes() == garbage


@pytest_twisted.ensureDeferred
async def test_a_state_dir_that_is_a_file_is_logged_once(make: Make, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with store_errors() as errors:
        store, _ = make(tmp_path / "file")
        assert store.load(NOW) == []
        store.save("a", NOW, body(1))
        await store.flushed()
        store.save("b", NOW, body(2))
        await store.flushed()
    assert len(errors) == 1, errors


@contextmanager
def unwritable_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory this process cannot create files in: read-only by mode, or,
    for root (who ignores modes), procfs, where nobody can."""
    if os.geteuid() == 0:
        yield Path("/proc/sys")
        return
    state = tmp_path / "ro"
    state.mkdir(mode=0o500)
    try:
        yield state
    finally:
        state.chmod(0o700)


@pytest_twisted.ensureDeferred
async def test_an_unwritable_state_dir_is_logged_once(make: Make, tmp_path: Path) -> None:
    with unwritable_dir(tmp_path) as state, store_errors() as errors:
        store, _ = make(state)
        assert store.load(NOW) == []
        for i in range(2):
            store.save(f"p{i}", NOW, body(i))
            await store.flushed()
    assert len(errors) == 1, errors
    assert store.writes == 0


@pytest_twisted.ensureDeferred
async def test_a_locked_store_is_logged_once_and_used_again_when_free(
    make: Make, tmp_path: Path
) -> None:
    store, _ = make()
    store.save("before", NOW, body(1))
    await store.flushed()
    other = sqlite3.connect(tmp_path / "state" / FILE_NAME, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")  # another process holding the file
        with capturedLogs() as events:
            store.save("during", NOW + 1, body(2))
            await store.flushed()
            store.save("during", NOW + 2, body(3))
            await store.flushed()
            other.execute("ROLLBACK")
            store.save("after", NOW + 3, body(4))
            await store.flushed()
    finally:
        other.close()
    said = [e for e in events if "results store" in e.get("log_format", "")]
    assert len(said) == 2, said
    assert "cannot be used" in said[0]["log_format"] and "locked" in said[0]["why"]
    assert "works again" in said[1]["log_format"]
    assert [name for name, _ in rows(tmp_path / "state")] == ["before", "after"]


# -- behind LastTransfers ------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_last_transfers_writes_through_and_restores(make: Make) -> None:
    store, clock = make(ttl=100)
    memory = LastTransfers(100, 10, store)
    memory.remember("a", body(1), NOW - 30)
    memory.remember("b", body(2), NOW - 20)
    await store.stopService()

    again, _ = make(ttl=100)
    restarted = LastTransfers(100, 10, again)
    restarted.remember("b", body(99), NOW)  # newer than the kept one: it wins
    restarted.restore(again.load(NOW), NOW)
    assert restarted.get("a", NOW) == body(1)
    assert restarted.get("b", NOW) == body(99)
    assert restarted.get("a", NOW + 71) is None  # the ttl counts from the original end
    assert restarted.get("b", NOW + 71) == body(99)
