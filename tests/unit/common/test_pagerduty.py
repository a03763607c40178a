"""The PagerDuty event read from a done event alone, as ``hoodypipe watch`` builds it."""

from __future__ import annotations

import pytest

from hoodypipe.common.pagerduty import duration_seconds, is_complete, summary


@pytest.mark.parametrize(
    ("done", "seconds"),
    [
        ({"durationSec": 2.5, "duration": 2500}, 2.5),  # ours wins
        ({"duration": 2500}, 2.5),  # the kit's alone is milliseconds
        ({"durationSec": 0, "duration": 0}, 0.0),
        ({"duration": "soon"}, None),
        ({"duration": True}, None),
        ({}, None),
    ],
)
def test_duration_in_seconds(done: dict[str, object], seconds: float | None) -> None:
    assert duration_seconds(done) == seconds


def test_summary_of_a_kit_server_done_reads_milliseconds_as_such() -> None:
    done = {"state": "complete", "bytesTransferred": 2000, "duration": 3000}
    assert summary("p", done) == "hoodypipe: transfer p complete, 2.0 kB in 3.0s"


@pytest.mark.parametrize(
    ("done", "complete"),
    [({"ok": True, "state": "failed"}, True), ({"ok": False}, False),
     ({"state": "complete"}, True), ({"state": "failed"}, False), ({}, False)],
)
def test_is_complete_trusts_ok_first(done: dict[str, object], complete: bool) -> None:
    assert is_complete(done) is complete
