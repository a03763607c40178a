"""twistd glue: options in, a MultiService of listeners out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application import strports
from twisted.application.service import IService
from twisted.python import usage

# The same parsers as the client's (one place); the short names keep the table below.
from hoodypipe.common.numbers import positive_float as _positive_float
from hoodypipe.common.numbers import positive_int as _positive_int
from hoodypipe.settings import Settings

_DEFAULTS = Settings()

_NUMERIC: list[tuple[str, Callable[[str], Any], str]] = [
    ("max-waiting", _positive_int, "Most pipes waiting for their other side (429 beyond)."),
    ("max-active", _positive_int, "Most pipes streaming at once (429 beyond)."),
    ("max-receivers", _positive_int, "Largest ?n a party may ask for."),
    ("max-parties", _positive_int,
     "Most senders and receivers held by waiting and streaming pipes together, "
     "each a socket (429 beyond)."),
    ("default-wait", _positive_float, "Seconds a party waits for the other side without ?wait."),
    ("max-wait", _positive_float, "Largest ?wait in seconds."),
    ("idle-timeout", _positive_float, "Seconds without a byte moving before a transfer fails."),
    ("keepalive-interval", _positive_float,
     "Seconds between keep-alive lines to a waiting sender."),
    ("read-size", _positive_int, "Bytes read from a sender's socket per read."),
    ("connection-timeout", _positive_float,
     "Seconds an idle connection (no request, or headers not finished) is kept."),
    ("head-timeout", _positive_float,
     "Seconds from a request's first byte to its last header (408 beyond)."),
    ("max-connections", _positive_int,
     "Most open connections (503 beyond); at most the open-file limit less a margin."),
    ("max-spectators", _positive_int, "Most ?progress watchers per path (429 beyond)."),
    ("max-watched", _positive_int, "Most watched paths in all (429 beyond)."),
    ("spectator-ttl", _positive_float, "Seconds a spectator connection lives."),
    ("linger", _positive_float, "Seconds a finished transfer stays visible on its path."),
    ("last-transfer-ttl", _positive_float, "Seconds a path's last result is kept as lastTransfer."),
    ("last-transfer-max", _positive_int, "Most lastTransfer results kept."),
    ("progress-interval", _positive_float, "Seconds between progress events."),
    ("heartbeat-interval", _positive_float, "Seconds between SSE comment heartbeats."),
    ("hook-timeout", _positive_float, "Seconds one notification request may take."),
    ("hook-retries", _positive_int, "Most tries of one notification."),
    ("grace", _positive_float, "Seconds running transfers get to finish on SIGTERM."),
]


def _default(name: str) -> str:
    value = getattr(_DEFAULTS, name.replace("-", "_"))
    return "the open-file limit less a margin" if value is None else str(value)


class Options(usage.Options):
    optParameters = [
        (name, None, None, f"{doc} [default: {_default(name)}]")
        for name, _, doc in _NUMERIC
    ] + [
        ["on-done-match", None, None, "Only notify for pipe names matching this glob."],
        ["pagerduty-routing-key", None, None, "Send a PagerDuty Events v2 event on done."],
        ["pagerduty-url", None, _DEFAULTS.pagerduty_url, "PagerDuty Events v2 URL."],
        ["public-url", None, None, "Base URL the server is reached at (for links)."],
        ["state-dir", None, None,
         "Keep finished transfers' results (lastTransfer) in this directory, "
         "so they survive a restart [default: memory only]."],
    ]
    optFlags = [
        ["on-done-failed-only", None, "Only notify about failed transfers."],
        ["access-log", None, "Also log every request (Combined Log Format); transfers "
         "and refusals are logged either way."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []
        self["on-done"] = []

    def opt_listen(self, endpoint: str) -> None:
        """Listen on an endpoint (repeatable): tcp:8080, unix:/run/p.sock,
        systemd:domain=INET:index=0 ... [default: tcp:8080]"""
        self["listen"].append(endpoint)

    def opt_on_done(self, url: str) -> None:
        """POST the done event to this URL when a transfer ends (repeatable)."""
        if not url.startswith(("http://", "https://")):
            raise usage.UsageError(f"--on-done needs an http(s) URL, not {url!r}")
        self["on-done"].append(url)

    def postOptions(self) -> None:
        if not self["listen"]:
            self["listen"] = ["tcp:8080"]
        values: dict[str, Any] = {}
        for name, parse, _ in _NUMERIC:
            raw = self[name]
            if raw is None:
                continue
            try:
                values[name.replace("-", "_")] = parse(raw)
            except ValueError as e:
                raise usage.UsageError(f"--{name} {raw!r}: {e}") from None
        if values.get("default_wait", _DEFAULTS.default_wait) > values.get(
            "max_wait", _DEFAULTS.max_wait
        ):
            raise usage.UsageError("--default-wait must not exceed --max-wait")
        if values.get("max_receivers", _DEFAULTS.max_receivers) >= values.get(
            "max_parties", _DEFAULTS.max_parties
        ):
            raise usage.UsageError(
                "--max-receivers must be below --max-parties: a transfer holds its "
                "sender and n receivers")
        key: str | None = self["pagerduty-routing-key"]
        self.settings = Settings(
            on_done=tuple(self["on-done"]),
            on_done_match=self["on-done-match"],
            on_done_failed_only=bool(self["on-done-failed-only"]),
            pagerduty_routing_key=key,
            pagerduty_url=self["pagerduty-url"],
            public_url=self["public-url"],
            state_dir=self["state-dir"] or None,
            access_log=bool(self["access-log"]),
            **values,
        )


def makeService(options: Options) -> IService:
    from twisted.internet import reactor

    from hoodypipe.bytepath.guard import TwistedMismatch
    from hoodypipe.listeners import Listeners, listen_backlog, somaxconn, with_backlog
    from hoodypipe.ops.drain import DrainService, second_signal_cuts_drain
    from hoodypipe.ops.sdnotify import ReadyService, SystemdNotifier
    from hoodypipe.service import build_app

    notifier = SystemdNotifier.from_environment()
    try:
        app = build_app(reactor, options.settings)
    except TwistedMismatch as e:
        raise SystemExit(str(e)) from None
    service = DrainService(app.registry, reactor, options.settings.grace, notifier)
    second_signal_cuts_drain(reactor, service)
    app.setServiceParent(service)
    backlog = listen_backlog(app.site.max_connections, somaxconn())
    listeners = Listeners()
    for description in options["listen"]:
        try:
            # strports.service, not a bare StreamServerEndpointService: it
            # raises a failed listen instead of logging it and running on,
            # listening nowhere (and telling systemd READY=1).
            listener = strports.service(with_backlog(description, backlog), app.site,
                                        reactor=reactor)
        except (ValueError, KeyError, TypeError) as e:
            raise usage.UsageError(f"--listen {description!r}: {e}") from None
        listener.setServiceParent(listeners)
    listeners.setServiceParent(service)
    ReadyService(notifier).setServiceParent(service)
    return service
