"""The twistd plugin's options: defaults, every option, and UsageErrors (in memory)."""

from __future__ import annotations

import re

import pytest
from twisted.python.usage import UsageError

from hoodypipe.settings import Settings
from hoodypipe.tap import Options
from tests.kit.service import REPO


def parse(*args: str) -> Options:
    options = Options()
    options.parseOptions(list(args))
    return options


def test_defaults_are_the_contracts() -> None:
    options = parse()
    assert options["listen"] == ["tcp:8080"]
    assert options.settings == Settings()
    s = options.settings
    assert (s.max_waiting, s.max_active, s.max_receivers) == (1000, 1000, 256)
    assert (s.default_wait, s.max_wait, s.idle_timeout) == (300, 3600, 300)
    assert (s.max_spectators, s.max_watched, s.spectator_ttl, s.linger) == (50, 500, 1800, 30)
    assert s.max_parties == 16384
    assert not s.access_log


def test_the_default_caps_fit_the_units_file_limit() -> None:
    """Every party and every spectator is a socket: at the default caps they
    must all fit under the systemd unit's LimitNOFILE, with room to spare for
    the listeners, idle keep-alive connections, webhooks and logs."""
    unit = (REPO / "etc" / "systemd" / "hoodypipe.service").read_text()
    match = re.search(r"^LimitNOFILE=(\d+)$", unit, re.MULTILINE)
    assert match is not None
    limit = int(match.group(1))
    s = Settings()
    sockets = s.max_parties + s.max_watched * s.max_spectators
    assert sockets <= limit * 3 // 4, (sockets, limit)
    # ...and the pipe caps alone would not have been enough.
    assert s.max_waiting * (s.max_receivers + 1) > limit


def test_every_option_reaches_the_settings() -> None:
    options = parse("--listen", "tcp:1", "--listen", "unix:/tmp/x.sock",
                    "--max-waiting", "7", "--max-active", "8", "--idle-timeout", "9.5",
                    "--linger", "2", "--on-done", "http://127.0.0.1:9/h",
                    "--on-done-failed-only", "--grace", "5", "--max-parties", "300",
                    "--access-log")
    assert options["listen"] == ["tcp:1", "unix:/tmp/x.sock"]
    s = options.settings
    assert (s.max_waiting, s.max_active, s.idle_timeout, s.linger) == (7, 8, 9.5, 2)
    assert s.on_done == ("http://127.0.0.1:9/h",) and s.on_done_failed_only
    assert s.grace == 5
    assert s.max_parties == 300
    assert s.access_log


@pytest.mark.parametrize("args, message", [
    (["--max-waiting", "0"], "--max-waiting '0'"),
    (["--max-waiting", "many"], "--max-waiting 'many'"),
    (["--idle-timeout", "-1"], "--idle-timeout '-1'"),
    (["--default-wait", "100", "--max-wait", "50"], "--default-wait must not exceed"),
    (["--on-done", "ftp://x"], "--on-done needs an http(s) URL"),
    (["--max-parties", "0"], "--max-parties '0': must be a whole number of at least 1"),
    (["--max-parties", "256"], "--max-receivers must be below --max-parties"),
    (["--max-parties", "10", "--max-receivers", "10"],
     "--max-receivers must be below --max-parties"),
])
def test_bad_options_are_usage_errors(args: list[str], message: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse(*args)
    assert message in str(raised.value)


def test_connection_options() -> None:
    s = parse("--head-timeout", "2.5", "--max-connections", "300").settings
    assert (s.head_timeout, s.max_connections) == (2.5, 300)
    defaults = parse().settings
    assert (defaults.head_timeout, defaults.max_connections) == (30.0, None)


@pytest.mark.parametrize("args, message", [
    (["--head-timeout", "0"], "--head-timeout '0'"),
    (["--max-connections", "0"], "--max-connections '0'"),
])
def test_bad_connection_options(args: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse(*args)


def test_help_names_the_default_cap() -> None:
    (doc,) = [p[3] for p in Options.optParameters if p[0] == "max-connections"]
    assert doc.endswith("[default: the open-file limit less a margin]")


def test_state_dir_and_last_transfer_ttl() -> None:
    assert parse().settings.state_dir is None
    s = parse("--state-dir", "/var/lib/hoodypipe", "--last-transfer-ttl", "90").settings
    assert (s.state_dir, s.last_transfer_ttl) == ("/var/lib/hoodypipe", 90)
    assert parse("--state-dir", "").settings.state_dir is None  # an unset $STATE_DIRECTORY
