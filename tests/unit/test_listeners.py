"""The connection cap and the listen backlog each listener gets (in memory)."""

from __future__ import annotations

import errno
import os

import pytest
from twisted.internet.error import CannotListenError

from hoodypipe.listeners import (
    FD_MARGIN,
    cannot_listen_message,
    connection_cap,
    listen_backlog,
    with_backlog,
)


@pytest.mark.parametrize("description, expected", [
    ("tcp:8080", "tcp:8080:backlog=900"),
    ("tcp:8080:interface=127.0.0.1", "tcp:8080:interface=127.0.0.1:backlog=900"),
    ("TCP:port=8080", "TCP:port=8080:backlog=900"),
    ("tcp6:8080:interface=\\:\\:1", "tcp6:8080:interface=\\:\\:1:backlog=900"),
    ("unix:/run/p.sock", "unix:/run/p.sock:backlog=900"),
    ("ssl:443:privateKey=/k.pem", "ssl:443:privateKey=/k.pem:backlog=900"),
    # the operator's own backlog wins
    ("tcp:8080:backlog=10", "tcp:8080:backlog=10"),
    ("tcp:8080:Backlog = 10", "tcp:8080:Backlog = 10"),
    # sockets hoodypipe does not create
    ("systemd:domain=INET:index=0", "systemd:domain=INET:index=0"),
    ("stdio:", "stdio:"),
    # an escaped colon is part of a value, not a new field
    ("unix:/tmp/a\\:backlog=3", "unix:/tmp/a\\:backlog=3:backlog=900"),
])
def test_backlog_added_where_hoodypipe_makes_the_socket(description: str, expected: str) -> None:
    assert with_backlog(description, 900) == expected


def test_the_backlog_follows_the_cap_within_the_kernels_limit() -> None:
    assert listen_backlog(1000, 4096) == 1000
    assert listen_backlog(60000, 4096) == 4096


@pytest.mark.parametrize("configured, file_limit, cap", [
    (None, 500, 500 - FD_MARGIN),
    (None, 1024, 1024 - 102),  # a tenth kept back when that is more
    (None, 65536, 65536 - 6553),
    (100, 1024, 100),
    (5000, 500, 500 - FD_MARGIN),  # never up to the file limit
    (None, None, 65536),
    (7, None, 7),
    (None, 10, 1),
])
def test_the_connection_cap(configured: int | None, file_limit: int | None, cap: int) -> None:
    assert connection_cap(configured, file_limit) == cap


@pytest.mark.parametrize(("interface", "port", "address"), [
    ("127.0.0.1", 8080, "127.0.0.1:8080"),
    ("", 8080, "*:8080"),
    ("::1", 8080, "[::1]:8080"),
    (None, "/run/p.sock", "/run/p.sock"),
])
def test_a_failed_listen_is_one_line(interface: str | None, port: int | str,
                                     address: str) -> None:
    error = CannotListenError(interface, port, OSError(errno.EADDRINUSE,
                                                       os.strerror(errno.EADDRINUSE)))
    assert cannot_listen_message(error) == (
        f"hoodypipe: cannot listen on {address}: {os.strerror(errno.EADDRINUSE)}")
