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
"""

from __future__ import annotations

import resource
from pathlib import Path

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
