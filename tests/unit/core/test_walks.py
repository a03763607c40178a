"""Random walks through the registry: whatever the order of joins, leaves,
timers, byte-path reports and shutdowns, the promises hold after every step.

Each walk is seeded, so a failure names the seed that reproduces it. The
byte path is a fake that behaves like the real Relay: it reports a dropped
receiver while others remain and fails the transfer when the last one goes,
reports its end once on its own (tests add duplicates on purpose), and may
report from inside ``abort`` as the Relay does.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import attrs
import pytest
from twisted.internet.task import Clock
from zope.interface import implementer

from hoodypipe.core import registry as registry_module
from hoodypipe.core.events import STREAMING, WAITING
from hoodypipe.core.lifecycle import PIPE_LIFE
from hoodypipe.core.outcomes import Refused
from hoodypipe.core.parties import ITransfer
from hoodypipe.core.pipe import Pipe
from hoodypipe.core.registry import PipeRegistry
from hoodypipe.settings import Settings
from tests.kit.observers import Recorder
from tests.kit.registry import FakeReceiver, FakeSender

NAMES = ("a", "b", "c")
SETTINGS = Settings(max_waiting=2, max_active=2, max_parties=5, keepalive_interval=2,
                    idle_timeout=10)


@implementer(ITransfer)
@attrs.define(eq=False)
class RelayLike:
    registry: PipeRegistry
    pipe: Pipe
    reports_abort: bool
    receivers: int
    finished: bool = False
    aborts: int = 0

    def abort(self, reason: str) -> None:
        self.aborts += 1
        if not self.finished:
            self.finished = True
            if self.reports_abort:
                self.registry.transfer_ended(self.pipe, False, reason)

    def drop_receiver(self) -> None:
        if self.finished:
            return
        self.receivers -= 1
        if self.receivers:
            self.registry.receiver_left(self.pipe)
        else:
            self.end(False, "All receivers disconnected before transfer completed")

    def end(self, ok: bool, reason: str | None) -> None:
        self.finished = True
        self.registry.transfer_ended(self.pipe, ok, reason)


@attrs.define
class Walker:
    rng: random.Random
    clock: Clock = attrs.Factory(Clock)
    observer: Recorder = attrs.Factory(Recorder)
    registry: PipeRegistry = attrs.field(init=False)
    parties: list[tuple[Pipe, FakeSender | FakeReceiver]] = attrs.Factory(list)
    transfers: list[RelayLike] = attrs.Factory(list)
    refusals: int = 0

    def __attrs_post_init__(self) -> None:
        self.registry = PipeRegistry(self.clock, SETTINGS)
        self.registry.set_transfer_starter(self.start)
        self.registry.add_observer(self.observer)

    def start(self, pipe: Pipe) -> RelayLike:
        if self.rng.random() < 0.05:
            raise RuntimeError("a bug in the byte path")
        transfer = RelayLike(self.registry, pipe, self.rng.random() < 0.5, pipe.n)
        self.transfers.append(transfer)
        return transfer

    def step(self) -> None:
        rng = self.rng
        roll = rng.random()
        name, wait = rng.choice(NAMES), rng.choice((1, 4, 30))
        n = NAMES.index(name) + 1 if rng.random() < 0.9 else rng.choice((1, 2, 3))
        if roll < 0.25:
            sender = FakeSender()
            self.joined(self.registry.join_sender(name, n, wait, sender, None), sender)
        elif roll < 0.55:
            receiver = FakeReceiver()
            self.joined(self.registry.join_receiver(name, n, wait, receiver), receiver)
        elif roll < 0.65 and self.parties:
            pipe, handle = rng.choice(self.parties)
            self.registry.leave(pipe, handle)
        elif roll < 0.8:
            self.clock.advance(rng.choice((0.5, 1.0, 3.0, 11.0)))
        elif roll < 0.85 and self.transfers:
            rng.choice(self.transfers).pipe.bytes += 1
        elif roll < 0.9 and self.transfers:
            rng.choice(self.transfers).drop_receiver()
        elif roll < 0.97 and self.transfers:
            transfer = rng.choice(self.transfers)
            ok = rng.random() < 0.5
            transfer.end(ok, None if ok else "Sender disconnected")
        elif roll < 0.98:
            self.registry.fail_all()

    def joined(self, outcome: Pipe | Refused, handle: FakeSender | FakeReceiver) -> None:
        if isinstance(outcome, Refused):
            self.refusals += 1
        else:
            self.parties.append((outcome, handle))

    def check(self, seed: int, step: int) -> None:
        where = f"seed {seed}, step {step}"
        registry = self.registry
        live = [p for p in (registry.get(name) for name in NAMES) if p is not None]
        assert all(p.state in (WAITING, STREAMING) for p in live), where
        held = sum(p.parties_held() for p in live)
        assert registry.party_count() == held <= SETTINGS.max_parties, where
        streaming = sum(p.state == STREAMING for p in live)
        assert registry.active_count() == streaming <= SETTINGS.max_active, where
        assert registry.waiting_count() == len(live) - streaming <= SETTINGS.max_waiting, where
        ends = Counter(d.transfer_id for d in self.observer.done)
        assert all(count == 1 for count in ends.values()), where
        started = {id(party.handle) for t in self.transfers
                   for party in [t.pipe.sender, *t.pipe.receivers] if party is not None}
        for _, handle in self.parties:
            answers = handle.refusals if isinstance(handle, FakeReceiver) else handle.ended
            assert len(answers) <= 1, where
            assert not (answers and id(handle) in started), where


def walk(seed: int) -> Walker:
    walker = Walker(random.Random(seed))
    for step in range(400):
        walker.step()
        walker.check(seed, step)
    walker.registry.fail_all()
    walker.clock.pump([1.0] * 100)
    walker.check(seed, -1)
    assert walker.registry.party_count() == 0
    assert walker.registry.active_count() == walker.registry.waiting_count() == 0
    assert walker.clock.getDelayedCalls() == []
    # Every transfer the byte path ran was ended once, and every ended one told.
    ended = {d.transfer_id for d in walker.observer.done}
    assert {t.pipe.transfer_id for t in walker.transfers} <= ended
    return walker


def machine_rows() -> set[tuple[str, str, str]]:
    automaton = PIPE_LIFE.__automat_automaton__
    return {(old.name, symbol, new.name) for old, symbol, new, _ in automaton.allTransitions()}


@pytest.mark.parametrize("seed", range(40))
def test_a_random_walk_keeps_every_promise(seed: int) -> None:
    walk(seed)


def test_the_walks_go_everywhere_worth_going(monkeypatch: pytest.MonkeyPatch) -> None:
    rows: Counter[tuple[str, str, str]] = Counter()
    real_open = registry_module.open_pipe

    def open_traced(*args: Any, **kwargs: Any) -> Pipe:
        pipe = real_open(*args, **kwargs)
        transitioner: Any = getattr(pipe.life, "__automat_transitioner__")  # noqa: B009
        transitioner.setTrace(lambda old, symbol, new: rows.update([(old.name, symbol, new.name)]))
        return pipe

    monkeypatch.setattr(registry_module, "open_pipe", open_traced)
    walkers = [walk(seed) for seed in range(40)]
    # Every row of the table but one the byte path never sends (it reports
    # only on streaming pipes), and the second ends that the rows swallow.
    table = {row for row in machine_rows() if row[0] in ("waiting", "streaming")}
    assert table - set(rows) == {("waiting", "receiver_dropped", "waiting")}
    for ended in ("complete", "failed"):
        for second in ("completed", "failed"):
            assert rows[(ended, second, ended)] > 0
    ends = {(d.ok, d.reason) for w in walkers for d in w.observer.done}
    assert {(True, None), (False, "Idle timeout"), (False, "Sender disconnected"),
            (False, "Timed out waiting for receivers"), (False, "Server shutting down"),
            (False, "Internal server error"),
            (False, "All receivers disconnected before transfer completed")} <= ends
