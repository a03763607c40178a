"""tests/kit/slow_hash.py: the slowed worker takes the time it says, then hashes."""

from __future__ import annotations

import hashlib
import sys
import time

from hoodypipe.bytepath.hasher import update_all
from tests.kit import slow_hash


def test_slowed_takes_as_long_as_the_rate_says_and_still_hashes() -> None:
    slow = slow_hash.slowed(200_000, update_all)
    digest = hashlib.sha256()
    started = time.monotonic()
    slow(digest, [b"a" * 5_000, memoryview(b"b" * 5_000)])
    assert time.monotonic() - started >= 0.05
    assert digest.hexdigest() == hashlib.sha256(b"a" * 5_000 + b"b" * 5_000).hexdigest()


def test_the_launcher_runs_this_module_with_the_rate() -> None:
    assert slow_hash.launcher(16e6) == [sys.executable, "-m", "tests.kit.slow_hash", "16000000.0"]
