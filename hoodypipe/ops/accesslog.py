"""
Twisted's per-request access log, written only when the operator asks.

``twisted.web``'s ``Site`` writes a Combined Log Format line for every
request, through the legacy log into every observer: a receiver and a sender
make two lines per transfer, each spectator, health probe and metrics scrape
one more. On a 1 KiB transfer those lines were the largest single cost of the
server (about a fifth of its busy time), and they say less than the lines an
operator reads: one per transfer (``translog.TransferLog``) and one per
refused request (``translog.RequestLog``). So the access log is off unless
``--access-log`` turns it on, for a server with no proxy in front that should
keep every client's address and user agent.
"""

from __future__ import annotations

from twisted.web.http import Request
from twisted.web.server import Site


class OptionalAccessLogSite(Site):
    """A ``Site`` whose access log is written only when ``access_log`` is set."""

    access_log = False

    def log(self, request: Request) -> None:
        if self.access_log:
            super().log(request)
