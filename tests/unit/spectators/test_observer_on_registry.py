"""The spectator observer on the core's real PipeRegistry (in memory, on a Clock)."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from zope.interface import implementer

from hoodypipe.core.outcomes import Refused, SenderNews
from hoodypipe.core.registry import IReceiver, ISender, ITransfer, Pipe, PipeRegistry
from hoodypipe.settings import Settings
from tests.kit.spectators import Server


@implementer(ISender)
class Sender:
    def tell(self, news: SenderNews) -> None:
        pass

    def refuse(self, refused: Refused) -> None:
        pass


@implementer(IReceiver)
class Receiver:
    def refuse(self, refused: Refused) -> None:
        pass


@implementer(ITransfer)
class Transfer:
    def abort(self, reason: str) -> None:
        pass


def real_server(**settings: Any) -> tuple[Server, PipeRegistry, list[Pipe]]:
    clock = Clock()
    clock.advance(1000.0)
    config = Settings(**settings)
    registry = PipeRegistry(clock, config)
    started: list[Pipe] = []

    def start(pipe: Pipe) -> Transfer:
        started.append(pipe)
        return Transfer()

    registry.set_transfer_starter(start)
    return Server(config, registry=registry, clock=clock), registry, started


def test_a_transfer_through_the_real_registry() -> None:
    server, registry, started = real_server()
    spectator = server.get("/p?progress")
    registry.join_receiver("p", 1, 60.0, Receiver())
    registry.join_sender("p", 1, 60.0, Sender(), 1000)
    [pipe] = started
    for step in range(1, 5):
        pipe.bytes = step * 250
        server.advance(0.25)
    registry.transfer_ended(pipe, ok=True, reason=None)
    events = spectator.events()
    states = [e.data["state"] for e in events if e.event == "state"]
    assert states == ["idle", "waiting", "waiting", "streaming", "complete"]
    progress = [e.data for e in events if e.event == "progress"]
    assert progress[-1]["bytes"] == 1000 and progress[-1]["percent"] == 100.0
    [done] = [e.data for e in events if e.event == "done"]
    assert done["ok"] is True and done["bytes"] == 1000
    assert done["transferId"] == pipe.transfer_id
    assert spectator.ended
    # the registry forgot the name at once; the observer still shows the result
    assert registry.status("p").state == "idle"
    late = server.get("/p?progress")
    assert [e.event for e in late.events()] == ["done", "state"]


def test_sender_leaving_while_waiting_fails_that_transfer_only() -> None:
    server, registry, _ = real_server()
    spectator = server.get("/p?progress")
    registry.join_receiver("p", 2, 60.0, Receiver())  # one of two
    sender = Sender()
    pipe = registry.join_sender("p", 2, 60.0, sender, None)
    registry.leave(pipe, sender)
    events = spectator.events()
    [done] = [e.data for e in events if e.event == "done"]
    assert done["ok"] is False and done["reason"]
    assert spectator.ended
    # the receiver still waits: that is a new transfer, so no linger
    again = server.get("/p?progress")
    [state] = again.events()
    assert state.data["state"] == "waiting"
    assert state.data["receivers"] == 1 and state.data["hasSender"] is False


def test_lone_receiver_timing_out_goes_back_to_idle() -> None:
    server, registry, _ = real_server()
    spectator = server.get("/p?progress")
    registry.join_receiver("p", 1, 5.0, Receiver())
    server.advance(5.5, step=0.5)
    states = [e.data["state"] for e in spectator.events() if e.event == "state"]
    assert states == ["idle", "waiting", "idle"]
    assert not spectator.ended  # nothing ended: no transfer ever started
