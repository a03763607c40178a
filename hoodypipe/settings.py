"""
Every cap, timeout and interval of the service in one frozen value.

Defaults are the limits and times clients are promised (tests/unit/test_tap.py
pins them); the twistd options fill this in, and tests build it directly
with shorter intervals.
"""

from __future__ import annotations

import attrs

from hoodypipe.common.pagerduty import EVENTS_URL


@attrs.frozen
class Settings:
    # transfers
    max_waiting: int = 1000
    max_active: int = 1000
    max_receivers: int = 256
    # Senders and receivers held by waiting and streaming pipes together: the
    # pipe caps alone would let 1000 waiting pipes of n=256 hold 256,000
    # sockets. With the spectators' own caps (50 x 500) this stays well inside
    # the systemd unit's LimitNOFILE=65536 (a unit test checks the sum).
    max_parties: int = 16384
    default_wait: float = 300.0
    max_wait: float = 3600.0
    idle_timeout: float = 300.0
    keepalive_interval: float = 30.0
    read_size: int = 512 * 1024
    connection_timeout: float = 60.0
    # the connection (see hoodypipe/listeners.py, hoodypipe/bytepath/channel.py)
    head_timeout: float = 30.0
    max_connections: int | None = None  # None: as many as the open-file limit allows
    form_head_timeout: float = 30.0
    # spectators
    max_spectators: int = 50
    max_watched: int = 500
    spectator_ttl: float = 1800.0
    linger: float = 30.0
    last_transfer_ttl: float = 86400.0
    last_transfer_max: int = 10000
    progress_interval: float = 0.25
    heartbeat_interval: float = 15.0
    # notifications
    on_done: tuple[str, ...] = ()
    on_done_match: str | None = None
    on_done_failed_only: bool = False
    pagerduty_routing_key: str | None = None
    pagerduty_url: str = EVENTS_URL
    public_url: str | None = None
    hook_timeout: float = 10.0
    hook_retries: int = 5
    # operations
    grace: float = 60.0
    #: Where finished transfers' results are kept across restarts (None: memory only).
    state_dir: str | None = None
    access_log: bool = False
