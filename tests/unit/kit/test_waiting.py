"""The kit's waits (tests/kit/waiting.py)."""

from __future__ import annotations

import time

import pytest

from tests.kit.waiting import wait_for


def test_wait_for_returns_the_value_or_fails_in_time() -> None:
    assert wait_for(lambda: 5, 1, "five") == 5
    started = time.monotonic()
    with pytest.raises(AssertionError, match="never"):
        wait_for(lambda: 0, 0.2, "never")
    assert time.monotonic() - started < 2
