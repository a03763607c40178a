"""
The listeners hoodypipe opens, and the connection cap they share.

Two limits keep a flood of connections from hurting the relay:

- the connection cap: at most this many open connections (over it, 503 at
  once), kept below the process's open-file limit so descriptors remain for
  its files and listeners. By default it is the soft ``RLIMIT_NOFILE`` less a
  margin; a configured cap above that is lowered to it.
- the listen backlog: Twisted's endpoints default to 50, so a burst of new
  connections on an idle server waits out SYN retries (seconds each) while
  the kernel's accept queue is full. Every listener hoodypipe creates from
  a ``tcp:``, ``tcp6:``, ``unix:`` or ``ssl:`` description gets a backlog
  matching the cap (the kernel caps it again at ``net.core.somaxconn``),
  unless the description sets ``backlog=`` itself. ``systemd:`` sockets are
  made by systemd (``Backlog=`` in the socket unit).

A listener that cannot be opened (port in use, no permission) stops twistd
at once with one line and a non-zero status, before ``READY=1``; see
``Listeners``.
"""

from __future__ import annotations

import resource
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from twisted.application.service import MultiService
from twisted.internet.error import CannotListenError

FD_MARGIN = 64
BACKLOG_TYPES = frozenset({"tcp", "tcp6", "unix", "ssl"})
_SOMAXCONN = Path("/proc/sys/net/core/somaxconn")


def open_file_limit() -> int | None:
    """The soft limit on open files, or None when there is none."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def connection_cap(configured: int | None, file_limit: int | None) -> int:
    """How many connections may be open: ``configured`` (or as many as the file
    limit allows), at most the file limit less a margin for everything else."""
    room = None
    if file_limit is not None:
        room = max(1, file_limit - max(FD_MARGIN, file_limit // 10))
    if configured is None:
        return room if room is not None else 65536
    return configured if room is None else min(configured, room)


def somaxconn() -> int:
    """The kernel's own cap on a listen backlog (Linux), else a common default."""
    try:
        return int(_SOMAXCONN.read_text().strip())
    except (OSError, ValueError):
        return 4096


def listen_backlog(cap: int, kernel_max: int) -> int:
    return max(1, min(cap, kernel_max))


def _segments(description: str) -> list[str]:
    """``description`` split at its unescaped colons (backslash escapes, as in
    Twisted's endpoint grammar), escapes left in place."""
    segments, current, escaped = [], "", False
    for char in description:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            current += char
            escaped = True
        elif char == ":":
            segments.append(current)
            current = ""
        else:
            current += char
    segments.append(current)
    return segments


def with_backlog(description: str, backlog: int) -> str:
    """``description`` with ``backlog=`` added where hoodypipe creates the socket
    and the operator did not choose one."""
    segments = _segments(description)
    if segments[0].strip().lower() not in BACKLOG_TYPES:
        return description
    keys = {segment.partition("=")[0].strip().lower()
            for segment in segments[1:] if "=" in segment}
    if "backlog" in keys:
        return description
    return f"{description}:backlog={backlog}"


class ListenFailed(SystemExit, Exception):
    """
    A listener could not be opened: twistd should stop with this one line.

    A ``SystemExit``, so the interpreter prints just the message (no
    traceback) and exits with status 1; also an ``Exception``, so twistd's
    ``postApplication`` still sees it (``except Exception``): it removes the
    pidfile and, when daemonizing, reports the message to the parent.
    """


def cannot_listen_message(error: CannotListenError) -> str:
    """``hoodypipe: cannot listen on 127.0.0.1:8080: Address already in use``."""
    if error.interface is None:  # unix sockets: the port is the path
        address = str(error.port)
    else:
        host = error.interface or "*"
        address = f"[{host}]:{error.port}" if ":" in host else f"{host}:{error.port}"
    cause = error.socketError
    reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause)
    return f"hoodypipe: cannot listen on {address}: {reason}"


@contextmanager
def _listen_or_exit() -> Iterator[None]:
    try:
        yield
    except CannotListenError as e:
        raise ListenFailed(cannot_listen_message(e)) from None


class Listeners(MultiService):
    """
    The listening services (from ``strports.service``, which raise a failed
    listen instead of only logging it), turning that failure into
    ``ListenFailed``. twistd opens every port in ``privilegedStartService``,
    before any ``startService``, so ``READY=1`` is never sent then.
    """

    def privilegedStartService(self) -> None:
        with _listen_or_exit():
            super().privilegedStartService()  # type: ignore[no-untyped-call, unused-ignore]

    def startService(self) -> None:
        with _listen_or_exit():
            super().startService()  # type: ignore[no-untyped-call, unused-ignore]
