"""
The ``hoodypipe`` console script (the server itself runs as
``twistd hoodypipe``).

``hoodypipe watch URL`` follows a pipe's live feed and exits with the
transfer's outcome: 0 complete, 1 failed (or, with ``--expect-sha256``,
complete without that receipt), 2 when the feed could not be reached or read
after its retries (and for a bad command line). ``--exec``
and ``--pagerduty-routing-key`` act on the outcome without changing that
status: a failing hook command or an undelivered alert is reported on
stderr only.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IReactorCore
from twisted.internet.task import react
from twisted.logger import (
    FileLogObserver,
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    globalLogBeginner,
)

from hoodypipe import __version__
from hoodypipe.client.display import (
    Display,
    JSONLinesDisplay,
    PlainDisplay,
    TerminalDisplay,
)
from hoodypipe.client.outcome import exec_environment, run_exec, send_pagerduty
from hoodypipe.client.watch import (
    EXIT_FAILED,
    EXIT_UNREACHABLE,
    Watcher,
    feed_url,
    pipe_name,
    server_base,
)
from hoodypipe.common import pagerduty
from hoodypipe.common.http import make_http_client
from hoodypipe.common.numbers import positive_float as _positive_float
from hoodypipe.common.numbers import positive_int as _positive_int

ROUTING_KEY_ENV = "HOODYPIPE_PAGERDUTY_ROUTING_KEY"


def _sha256_hex(text: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
        raise argparse.ArgumentTypeError("must be 64 hexadecimal digits (a SHA-256)")
    return text.lower()


def sha256_problem(done: dict[str, Any], expected: str) -> str | None:
    """Why the done event's receipt is not ``expected``, or None when it is."""
    got = done.get("sha256")
    if not isinstance(got, str):
        return ("the transfer has no sha256 to check (the sender did not send "
                "with ?sha256, or the transfer failed)")
    if got.lower() != expected:
        return f"sha256 mismatch: expected {expected}, the server hashed {got.lower()}"
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hoodypipe",
        description="Tools for hoodypipe pipes (the server is `twistd hoodypipe`).",
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)
    watch = commands.add_parser(
        "watch",
        help="follow a pipe's live progress until its transfer ends",
        description=(
            "Follow URL's ?progress feed until the transfer ends. Exit status: "
            "0 complete, 1 failed (or not the --expect-sha256 digest), 2 feed "
            "unreachable or unreadable."
        ),
    )
    watch.add_argument("url", metavar="URL", help="the pipe's URL")
    watch.add_argument(
        "--json", action="store_true",
        help='print every event as a JSON line {"event": ..., "data": ...}',
    )
    watch.add_argument(
        "--exec", metavar="CMD", dest="exec_command",
        help="run CMD through /bin/sh when the transfer ends, the done JSON on "
        "its stdin (HOODYPIPE_STATE, HOODYPIPE_OK, HOODYPIPE_NAME, "
        "HOODYPIPE_URL, HOODYPIPE_TRANSFER_ID in its environment)",
    )
    watch.add_argument(
        "--pagerduty-routing-key", metavar="KEY",
        default=os.environ.get(ROUTING_KEY_ENV),
        help=f"send a PagerDuty Events v2 event when the transfer ends "
        f"(default: ${ROUTING_KEY_ENV})",
    )
    watch.add_argument(
        "--pagerduty-url", metavar="URL", default=pagerduty.EVENTS_URL,
        help="PagerDuty Events v2 endpoint [default: %(default)s]",
    )
    watch.add_argument(
        "--expect-sha256", metavar="HEX", type=_sha256_hex,
        help="exit 1 unless the transfer's sha256 (sent with ?sha256) is HEX",
    )
    watch.add_argument(
        "--tries", type=_positive_int, default=10, metavar="N",
        help="connections in a row without an event before giving up "
        "[default: %(default)s]",
    )
    watch.add_argument(
        "--retry-delay", type=_positive_float, default=3.0, metavar="SECONDS",
        help="first wait before reconnecting, doubled each time, unless the "
        "server sent a retry: hint [default: %(default)s]",
    )
    watch.add_argument(
        "--idle-timeout", type=_positive_float, default=45.0, metavar="SECONDS",
        help="reconnect when the feed sends nothing for this long "
        "[default: %(default)s]",
    )
    watch.add_argument(
        "--timeout", type=_positive_float, default=10.0, metavar="SECONDS",
        help="connect and notification request timeout [default: %(default)s]",
    )
    return parser


def _display(args: argparse.Namespace, name: str) -> Display:
    if args.json:
        return JSONLinesDisplay(sys.stdout, sys.stderr)
    if sys.stdout.isatty():
        return TerminalDisplay(sys.stdout, sys.stderr, name)
    return PlainDisplay(sys.stdout, sys.stderr, name)


def _start_logging() -> None:
    """Warnings and errors of the library (e.g. an undelivered alert) on stderr."""
    observer = FilteringLogObserver(
        FileLogObserver(sys.stderr, lambda event: f"hoodypipe: {formatEvent(event)}\n"),
        [LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)],
    )
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)


async def watch_main(reactor: Any, args: argparse.Namespace) -> int:
    """Run one watch to its end; the exit status is returned."""
    client = make_http_client(reactor, args.timeout)
    display = _display(args, pipe_name(args.url))
    watcher = Watcher(
        reactor, client, args.url, display,
        tries=args.tries, delay=args.retry_delay,
        idle_timeout=args.idle_timeout, connect_timeout=args.timeout,
    )
    result = await watcher.run()
    if result.done is None:
        return result.code
    code = result.code
    if args.expect_sha256 is not None:
        problem = sha256_problem(result.done, args.expect_sha256)
        if problem is not None:
            display.notice(problem)
            code = EXIT_FAILED
    if args.exec_command:
        env = exec_environment(args.url, watcher.name, result.done)
        status = await run_exec(reactor, args.exec_command, result.done, env)
        if status != 0:
            display.notice(f"--exec command exited with status {status}")
    if args.pagerduty_routing_key:
        delivered = await send_pagerduty(
            reactor, client,
            routing_key=args.pagerduty_routing_key,
            events_url=args.pagerduty_url,
            name=watcher.name,
            done=result.done,
            server=server_base(args.url),
            feed=watcher.url,
            timeout=args.timeout,
        )
        if not delivered:
            display.notice("the PagerDuty event could not be delivered")
    return code


def _react_watch(reactor: IReactorCore, args: argparse.Namespace) -> Deferred[None]:
    interrupted = False

    def on_shutdown() -> None:
        nonlocal interrupted
        interrupted = True
        running.cancel()

    async def run() -> None:
        try:
            code = await watch_main(reactor, args)
        except CancelledError:
            if interrupted:
                raise SystemExit(130) from None
            raise
        raise SystemExit(code)

    running: Deferred[None] = Deferred.fromCoroutine(run())
    reactor.addSystemEventTrigger("before", "shutdown", on_shutdown)
    return running


def main(argv: Sequence[str] | None = None) -> NoReturn:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        raise SystemExit(EXIT_UNREACHABLE if e.code else 0) from None
    if args.command == "watch":
        try:
            feed_url(args.url)
        except ValueError as e:
            parser.error(str(e))
        _start_logging()
        react(_react_watch, (args,))
    parser.error(f"unknown command {args.command!r}")


if __name__ == "__main__":
    main()
