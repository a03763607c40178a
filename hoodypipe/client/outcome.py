"""
What ``hoodypipe watch`` does with a transfer's outcome once it has its
``done``: run the ``--exec`` command with the done JSON, and send the
PagerDuty event itself (the same event the server sends, so PagerDuty folds
both into one alert by its transfer id).

Neither changes the watch's exit status: that is the transfer's outcome.
"""

from __future__ import annotations

import json
import os
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorProcess, IReactorTime
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure

from hoodypipe.common.delivery import Delivery, Sender
from hoodypipe.common.http import HTTPClientLike
from hoodypipe.common.jsonbody import encode_json
from hoodypipe.common.pagerduty import is_complete, pagerduty_event
from hoodypipe.common.retry import RetryPolicy

#: A laptop's alert is worth a few tries, not the server's patience.
PAGERDUTY_TRIES = 3


class _ExecProtocol(ProcessProtocol):
    """Hands the done JSON to the command's stdin and waits for it to exit."""

    def __init__(self, stdin: bytes) -> None:
        self._stdin = stdin
        self.ended: Deferred[int] = Deferred()

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(self._stdin)
        self.transport.closeStdin()

    def processEnded(self, reason: Failure) -> None:
        value = reason.value
        code = getattr(value, "exitCode", None)
        signal = getattr(value, "signal", None)
        if code is None:
            code = 128 + signal if isinstance(signal, int) else 255
        self.ended.callback(int(code))


def exec_environment(url: str, name: str, done: dict[str, Any]) -> dict[str, str]:
    """The caller's environment plus the outcome, for commands that would
    rather test a variable than parse JSON."""
    env = dict(os.environ)
    env.update(
        HOODYPIPE_URL=url,
        HOODYPIPE_NAME=name,
        HOODYPIPE_STATE=str(done.get("state", "")),
        HOODYPIPE_OK="1" if is_complete(done) else "0",
        HOODYPIPE_TRANSFER_ID=str(done.get("transferId") or ""),
    )
    return env


def run_exec(
    reactor: IReactorProcess, command: str, done: dict[str, Any], env: dict[str, str]
) -> Deferred[int]:
    """
    ``/bin/sh -c command`` with the done JSON (one line) on its stdin and our
    stdout/stderr; fires with its exit status (128 + N when killed by
    signal N).
    """
    protocol = _ExecProtocol(json.dumps(done, separators=(",", ":")).encode() + b"\n")
    reactor.spawnProcess(
        protocol,
        "/bin/sh",
        ["/bin/sh", "-c", command],
        env=env,
        childFDs={0: "w", 1: 1, 2: 2},
    )
    return protocol.ended


def send_pagerduty(
    clock: IReactorTime,
    client: HTTPClientLike,
    *,
    routing_key: str,
    events_url: str,
    name: str,
    done: dict[str, Any],
    server: str,
    feed: str,
    timeout: float,
) -> Deferred[bool]:
    """
    The ``trigger`` event for this outcome, with a few spaced-out tries;
    fires with whether PagerDuty took it (never fails). ``server`` is the
    relay's base URL (the event's source and link), ``feed`` the URL watched.
    """
    event = pagerduty_event(
        routing_key=routing_key,
        name=name,
        done=done,
        source=server,
        timestamp=clock.seconds(),
        progress_url=feed,
        client_url=server,
    )
    sender = Sender(clock, client, RetryPolicy(tries=PAGERDUTY_TRIES), timeout)
    transfer_id = done.get("transferId")
    delivery = Delivery(
        "pagerduty", events_url, encode_json(event), name,
        transfer_id if isinstance(transfer_id, str) else None,
    )
    return sender.send(delivery)
