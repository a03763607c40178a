"""
The ``--on-done`` webhook: which transfers it is for, and what it says.

The body is the ``done`` event of the spectator feed (built by
:func:`hoodypipe.common.wire.done_event`, so the two never drift apart) plus where
it happened: the pipe ``name``, the ``server`` it ran on and a
``progressUrl`` a human can open, both from ``--public-url`` (``null``
without it; the server never guesses its own address from a request).
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from urllib.parse import quote

from hoodypipe.common.jsonbody import JSONObject
from hoodypipe.common.urls import PIPE_PREFIX
from hoodypipe.common.wire import done_event
from hoodypipe.core.events import TransferResult
from hoodypipe.settings import Settings


def progress_url(public_url: str | None, name: str) -> str | None:
    """The spectator feed/dashboard URL of ``name``, when the server knows its
    public address."""
    if not public_url:
        return None
    return public_url.rstrip("/") + PIPE_PREFIX + quote(name, safe="/%!$&'()*+,;=:@~") + "?progress"


def wants_notification(settings: Settings, result: TransferResult) -> bool:
    """
    ``--on-done-failed-only`` and ``--on-done-match`` (a case-sensitive glob
    on the pipe name, as names are case-sensitive) filter every outbound
    notification of the server, webhooks and PagerDuty alike.
    """
    if settings.on_done_failed_only and result.ok:
        return False
    pattern = settings.on_done_match
    return pattern is None or fnmatchcase(result.name, pattern)


def webhook_body(result: TransferResult, public_url: str | None) -> JSONObject:
    body = done_event(result)
    body["name"] = result.name
    body["server"] = public_url or None
    body["progressUrl"] = progress_url(public_url, result.name)
    return body
