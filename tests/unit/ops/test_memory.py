"""Giving memory back after a peak: the idle trimmer on a Clock, and the
glibc calls themselves (they must not fail where glibc is the libc)."""

from __future__ import annotations

from twisted.internet.task import Clock

from hoodypipe.core.events import TransferResult
from hoodypipe.ops.memory import IdleTrimmer, malloc_trim, tune_malloc


def result() -> TransferResult:
    return TransferResult(name="p", transfer_id="t", ok=True, bytes=1, total_bytes=None,
                          started_at=0.0, ended_at=1.0, receivers=1)


class Counter:
    def __init__(self) -> None:
        self.active = 0
        self.trims = 0

    def trim(self) -> None:
        self.trims += 1


def trimmer(clock: Clock, counter: Counter) -> IdleTrimmer:
    return IdleTrimmer(clock, lambda: counter.active, counter.trim,
                       delay=1.0, min_interval=10.0)


def test_trims_a_moment_after_the_last_transfer_ends() -> None:
    clock, counter = Clock(), Counter()
    idle = trimmer(clock, counter)
    counter.active = 1
    idle.transfer_done(result())  # another one is still running: no trim
    clock.advance(5)
    assert counter.trims == 0
    counter.active = 0
    idle.transfer_done(result())
    clock.advance(0.9)
    assert counter.trims == 0
    clock.advance(0.1)
    assert counter.trims == 1


def test_no_trim_if_a_transfer_started_meanwhile() -> None:
    clock, counter = Clock(), Counter()
    idle = trimmer(clock, counter)
    idle.transfer_done(result())
    counter.active = 1
    clock.advance(2)
    assert counter.trims == 0


def test_at_most_one_trim_per_interval() -> None:
    clock, counter = Clock(), Counter()
    idle = trimmer(clock, counter)
    for _ in range(5):
        idle.transfer_done(result())
        clock.advance(1)
    assert counter.trims == 1
    clock.advance(8)
    assert counter.trims == 2  # the one asked for meanwhile, at the interval's end
    clock.advance(100)
    assert counter.trims == 2
    assert clock.getDelayedCalls() == []


def test_stop_cancels_a_pending_trim() -> None:
    clock, counter = Clock(), Counter()
    idle = trimmer(clock, counter)
    idle.transfer_done(result())
    idle.stop()
    clock.advance(5)
    assert counter.trims == 0


def test_glibc_calls() -> None:
    assert tune_malloc() is True
    malloc_trim()  # returns whether memory was released: either is fine
