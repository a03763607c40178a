"""The JSON of the done event: our seconds and the kit's milliseconds agree."""

from __future__ import annotations

import pytest

from hoodypipe.common.wire import done_event
from hoodypipe.core.events import TransferResult


def result_lasting(seconds: float, started: float = 1_700_000_000.0) -> TransferResult:
    return TransferResult(
        name="p", transfer_id="t", ok=True, bytes=1000, total_bytes=1000,
        started_at=started, ended_at=started + seconds, receivers=1,
    )


@pytest.mark.parametrize(
    "seconds",
    [0.0, 0.0004, 0.0005, 0.0006, 1.2345, 2.0005, 2.5, 59.9999, 8 * 3600 + 120.25],
)
def test_duration_is_whole_milliseconds_of_duration_sec(seconds: float) -> None:
    result = result_lasting(seconds)
    done = done_event(result)
    assert type(done["duration"]) is int
    assert done["duration"] == round(done["durationSec"] * 1000)
    assert abs(done["duration"] - result.duration_sec * 1000) <= 0.5 + 1e-6
    assert done["durationSec"] == round(result.duration_sec, 3)


def test_a_clock_stepping_back_is_zero_not_negative() -> None:
    done = done_event(result_lasting(-5.0))
    assert done["duration"] == 0 and done["durationSec"] == 0.0
