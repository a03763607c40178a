"""
``--state-dir``: a path's ``lastTransfer`` survives a restart of the real
server (SIGTERM, then a new twistd on the same directory), is gone after its
ttl, and a state directory that cannot be used is logged once while the relay
goes on as if it had none.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.kit.clients import Clients, get_json
from tests.kit.ops import Spectator
from tests.kit.service import Service, running_service
from tests.kit.waiting import wait_for

TTL = 20.0


def transfer(service: Service, clients: Clients, tmp_path: Path, name: str,
             query: str = "sha256") -> str:
    """One complete curl transfer with ``?sha256``; the payload's digest."""
    payload = tmp_path / f"{name.replace('/', '_')}.bin"
    payload.write_bytes(os.urandom(300_000))
    receiver = clients.receive(service.url(name))
    sender = clients.send_file(service.url(name, query), payload)
    assert sender.wait() == 0 and receiver.wait() == 0
    assert sender.text().splitlines()[-1] == "[INFO] Transfer complete."
    return hashlib.sha256(payload.read_bytes()).hexdigest()


def first_state(service: Service, name: str) -> dict[str, Any]:
    """The ``state`` event a spectator gets first (an idle path: with lastTransfer)."""
    spectator = Spectator(service.url(name, "progress"))
    try:
        wait_for(lambda: spectator.events, 10, "the first event")
    finally:
        spectator.stop()
    kind, data = spectator.events[0]
    assert kind == "state"
    return data


def last_transfer(service: Service, name: str) -> Any:
    return get_json(service.url(name, "status"))["lastTransfer"]


def test_last_transfer_survives_a_restart_until_its_ttl(
    tmp_path: Path, clients: Clients
) -> None:
    state = tmp_path / "state"
    options = ("--state-dir", str(state), "--last-transfer-ttl", str(TTL), "--linger", "1")
    with running_service(tmp_path, *options) as service:
        digest = transfer(service, clients, tmp_path, "night/backup.tar")
        ended = time.monotonic()
        wait_for(lambda: get_json(service.url("night/backup.tar", "status"))["state"]
                 == "idle", 10, "the linger to end")
        before = last_transfer(service, "night/backup.tar")
        assert before["sha256"] == digest
        service.stop()  # SIGTERM: the drain, then the store is flushed
        assert "Server Shut Down." in service.log()
    assert (state / "results.sqlite3").exists()

    with running_service(tmp_path, *options) as service:
        assert time.monotonic() - ended < TTL - 3, "too slow a restart for this ttl"
        after = last_transfer(service, "night/backup.tar")
        idle = first_state(service, "night/backup.tar")
        assert after == before
        assert (after["ok"], after["bytes"], after["sha256"]) == (True, 300_000, digest)
        assert idle["state"] == "idle" and idle["lastTransfer"] == before
        assert last_transfer(service, "never/used") is None
        # the ttl counts from the transfer's end, not from the restart
        wait_for(lambda: last_transfer(service, "night/backup.tar") is None, TTL + 10,
                 "the lastTransfer to expire")
        assert time.monotonic() - ended >= TTL - 1
        assert first_state(service, "night/backup.tar")["lastTransfer"] is None

    with running_service(tmp_path, *options) as service:  # expired: not read back
        assert last_transfer(service, "night/backup.tar") is None
        assert "0 lastTransfer result(s) read back" in service.log()


def test_without_a_state_dir_a_restart_forgets(tmp_path: Path, clients: Clients) -> None:
    with running_service(tmp_path, "--linger", "1") as service:
        transfer(service, clients, tmp_path, "forgotten")
        wait_for(lambda: last_transfer(service, "forgotten"), 10, "the lastTransfer")
    with running_service(tmp_path) as service:
        assert last_transfer(service, "forgotten") is None
    assert not any(p.suffix == ".sqlite3" for p in tmp_path.rglob("*"))


@contextmanager
def unusable(tmp_path: Path, kind: str) -> Iterator[Path]:
    """A state directory the store cannot use."""
    if kind == "corrupt":
        state = tmp_path / "corrupt"
        state.mkdir()
        (state / "results.sqlite3").write_bytes(b"not a database\n" * 1000)
        yield state
    elif os.geteuid() != 0:
        state = tmp_path / "read-only"
        state.mkdir(mode=0o500)
        try:
            yield state
        finally:
            state.chmod(0o700)
    else:
        yield Path("/proc/sys")  # root ignores modes; nobody creates files here


def check_unusable(tmp_path: Path, clients: Clients, kind: str) -> None:
    with unusable(tmp_path, kind) as state:
        options = ("--state-dir", str(state), "--linger", "1")
        with running_service(tmp_path, *options) as service:
            digests = [transfer(service, clients, tmp_path, f"p{i}") for i in range(3)]
            for i, digest in enumerate(digests):  # served from memory all the same
                kept = wait_for(lambda i=i: last_transfer(service, f"p{i}"), 10,
                                "the lastTransfer in memory")
                assert kept["sha256"] == digest
            log = service.log()
        assert log.count("cannot be used") == 1, log
        assert "lastTransfer results are kept in memory only" in log


def test_an_unwritable_state_dir_is_logged_once_and_the_relay_works(
    tmp_path: Path, clients: Clients
) -> None:
    check_unusable(tmp_path, clients, "unwritable")


def test_a_corrupt_store_is_logged_once_and_the_relay_works(
    tmp_path: Path, clients: Clients
) -> None:
    check_unusable(tmp_path, clients, "corrupt")
    assert (tmp_path / "corrupt" / "results.sqlite3").read_bytes() == (
        b"not a database\n" * 1000)
