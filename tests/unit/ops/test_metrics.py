"""Metrics and health documents, in memory."""

from __future__ import annotations

import json
import os

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from zope.interface.verify import verifyObject

import hoodypipe
from hoodypipe.core.events import ITransferObserver, PipeStatus, TransferResult
from hoodypipe.ops.health import (
    CONTENT_TYPE,
    ProcessFacts,
    health_body,
    health_code,
    iso_utc,
    open_fds,
    process_facts,
    rss_bytes,
)
from hoodypipe.ops.metrics import Metrics


class FakeRegistry:
    def __init__(self) -> None:
        self.active = 0
        self.waiting = 0
        self.parties = 0
        self.draining = False

    def active_count(self) -> int:
        return self.active

    def waiting_count(self) -> int:
        return self.waiting

    def party_count(self) -> int:
        return self.parties


def result(ok: bool, size: int, seconds: float, reason: str | None = None
           ) -> TransferResult:
    return TransferResult(name="p", transfer_id="t", ok=ok, bytes=size,
                          total_bytes=None, started_at=100.0,
                          ended_at=100.0 + seconds, receivers=1, reason=reason)


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render().decode("utf-8")
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_is_a_transfer_observer() -> None:
    assert verifyObject(ITransferObserver, Metrics(FakeRegistry(), process=False))


def test_transfers_bytes_and_durations() -> None:
    metrics = Metrics(FakeRegistry(), process=False)
    metrics.pipe_changed(PipeStatus(name="p", state="streaming"))
    metrics.transfer_done(result(True, 1000, 0.2))
    metrics.transfer_done(result(True, 24, 2.0))
    metrics.transfer_done(result(False, 7, 30.0, "Sender disconnected"))
    found = samples(metrics)
    assert found[("hoodypipe_transfers_total", (("outcome", "complete"),))] == 2
    assert found[("hoodypipe_transfers_total", (("outcome", "failed"),))] == 1
    assert found[("hoodypipe_relayed_bytes_total", ())] == 1031
    complete = (("outcome", "complete"),)
    assert found[("hoodypipe_transfer_duration_seconds_count", complete)] == 2
    total = found[("hoodypipe_transfer_duration_seconds_sum", complete)]
    assert abs(total - 2.2) < 1e-9
    le = "hoodypipe_transfer_duration_seconds_bucket"
    assert found[(le, (("le", "0.5"), ("outcome", "complete")))] == 1
    assert found[(le, (("le", "5.0"), ("outcome", "complete")))] == 2
    assert found[(le, (("le", "15.0"), ("outcome", "failed")))] == 0
    assert found[(le, (("le", "60.0"), ("outcome", "failed")))] == 1


def test_gauges_are_read_when_scraped() -> None:
    registry = FakeRegistry()
    watching = [0]
    metrics = Metrics(registry, spectators=lambda: watching[0], process=False)
    assert samples(metrics)[("hoodypipe_active_pipes", ())] == 0
    registry.active, registry.waiting, registry.parties, watching[0] = 3, 5, 11, 7
    registry.draining = True
    found = samples(metrics)
    assert found[("hoodypipe_active_pipes", ())] == 3
    assert found[("hoodypipe_waiting_pipes", ())] == 5
    assert found[("hoodypipe_parties", ())] == 11
    assert found[("hoodypipe_spectators", ())] == 7
    assert found[("hoodypipe_draining", ())] == 1


def test_a_broken_spectator_count_does_not_break_the_scrape() -> None:
    def broken() -> int:
        raise RuntimeError("feed gone")

    metrics = Metrics(FakeRegistry(), spectators=broken, process=False)
    assert samples(metrics)[("hoodypipe_spectators", ())] == 0


def test_rejections_by_reason_with_bounded_labels() -> None:
    metrics = Metrics(FakeRegistry(), process=False)
    metrics.rejected("busy")
    metrics.rejected("busy")
    metrics.rejected("too_long")
    metrics.rejected("Not A Code\n")
    for i in range(100):
        metrics.rejected(f"made_up_{i}")
    found = samples(metrics)
    name = "hoodypipe_rejected_requests_total"
    assert found[(name, (("reason", "busy"),))] == 2
    assert found[(name, (("reason", "draining"),))] == 0, "known reasons start at 0"
    assert found[(name, (("reason", "too_long"),))] == 1
    reasons = {labels for (n, labels) in found if n == name}
    assert len(reasons) <= 65
    assert found[(name, (("reason", "other"),))] > 1


def test_private_collector_registry_and_build_info() -> None:
    before = set(REGISTRY._names_to_collectors)
    a = Metrics(FakeRegistry())
    b = Metrics(FakeRegistry())
    a.transfer_done(result(True, 5, 1.0))
    assert set(REGISTRY._names_to_collectors) == before
    assert samples(b)[("hoodypipe_relayed_bytes_total", ())] == 0
    found = samples(a)
    assert found[("hoodypipe_build_info", (("version", hoodypipe.__version__),))] == 1
    assert ("process_resident_memory_bytes", ()) in found
    assert a.content_type.startswith("text/plain; version=0.0.4")


def test_health_document() -> None:
    registry = FakeRegistry()
    registry.active, registry.waiting = 2, 1
    facts = ProcessFacts(pid=4242, memory=52_428_800, fds=17)
    body = json.loads(health_body(registry, started_at=10.0, now=25.5, facts=lambda: facts))
    assert body == {"status": "ok", "version": hoodypipe.__version__,
                    "uptimeSec": 15.5, "waiting": 1, "active": 2,
                    "draining": False,
                    "service": "hoodypipe", "started": "1970-01-01T00:00:10.000Z",
                    "pid": 4242, "built": hoodypipe.__version__,
                    "memory": 52_428_800, "fds": 17}
    assert health_code(registry) == 200
    registry.draining = True
    body = json.loads(health_body(registry, started_at=10.0, now=25.5))
    assert body["draining"] is True and body["status"] == "draining"
    assert health_code(registry) == 503
    assert CONTENT_TYPE == "application/json"


def test_health_process_facts_are_this_process() -> None:
    facts = process_facts()
    assert facts.pid == os.getpid()
    assert facts.memory is not None and 1_000_000 < facts.memory < 10_000_000_000
    before = open_fds()
    assert before is not None and before >= 3
    with open(os.devnull, "rb"):
        assert open_fds() == before + 1
    assert rss_bytes() is not None


def test_health_started_is_iso_utc_with_z() -> None:
    assert iso_utc(0.0) == "1970-01-01T00:00:00.000Z"
    assert iso_utc(1796322843.1234) == "2026-12-03T18:34:03.123Z"
