"""
The registry's fakes for the in-memory tests: parties that record what they
were told (as the web layer words it), a byte path that records its aborts,
and a ``World`` of a registry on a ``Clock``.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest
from twisted.internet.task import Clock
from zope.interface import implementer

from hoodypipe.core.errors import Refusal
from hoodypipe.core.events import PipeStatus
from hoodypipe.core.outcomes import Refused, SenderNews
from hoodypipe.core.registry import IReceiver, ISender, ITransfer, Pipe, PipeRegistry
from hoodypipe.settings import Settings
from hoodypipe.web import wording
from tests.kit.observers import Recorder


@implementer(ISender)
class FakeSender:
    """Records the status lines and how its response was ended, as worded
    for the wire (``web.wording``)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.ended: list[str | None] = []

    def tell(self, news: SenderNews) -> None:
        assert not self.ended, "a status line after the response ended"
        self.lines.append(wording.sender_line(news))

    def refuse(self, refused: Refused) -> None:
        self.ended.append(wording.refusal(refused).reason)


@implementer(IReceiver)
class FakeReceiver:
    """Records the refusals it was answered with, as worded for the wire."""

    def __init__(self) -> None:
        self.refusals: list[tuple[int, str, str]] = []

    def refuse(self, refused: Refused) -> None:
        refusal = wording.refusal(refused)
        self.refusals.append((refusal.status, refusal.reason, refusal.code))


@implementer(ITransfer)
class FakeTransfer:
    """A byte path that only records the reasons it was aborted with."""

    def __init__(self, pipe: Pipe, on_abort: Callable[[str], None] | None) -> None:
        self.pipe = pipe
        self.aborts: list[str] = []
        self._on_abort = on_abort

    def abort(self, reason: str) -> None:
        self.aborts.append(reason)
        if self._on_abort is not None:
            self._on_abort(reason)


class Starter:
    """The transfer starter: remembers each full pipe it was given.

    With ``reports=True`` its transfers behave like the real Relay on abort:
    they report the failure back to the registry themselves.
    """

    def __init__(self) -> None:
        self.transfers: list[FakeTransfer] = []
        self.registry: PipeRegistry | None = None
        self.reports = False

    def __call__(self, pipe: Pipe) -> FakeTransfer:
        on_abort = None
        if self.reports:
            registry = self.registry
            assert registry is not None

            def on_abort(reason: str) -> None:
                registry.transfer_ended(pipe, ok=False, reason=reason)

        transfer = FakeTransfer(pipe, on_abort)
        self.transfers.append(transfer)
        return transfer

    @property
    def pipes(self) -> list[Pipe]:
        return [t.pipe for t in self.transfers]


@attrs.define
class World:
    clock: Clock
    registry: PipeRegistry
    starter: Starter
    observer: Recorder

    def sender(self, name: str = "p", n: int = 1, wait: float = 300.0,
               total: int | None = None) -> tuple[FakeSender, Pipe]:
        sender = FakeSender()
        return sender, joined(self.registry.join_sender(name, n, wait, sender, total))

    def receiver(self, name: str = "p", n: int = 1,
                 wait: float = 300.0) -> tuple[FakeReceiver, Pipe]:
        receiver = FakeReceiver()
        return receiver, joined(self.registry.join_receiver(name, n, wait, receiver))

    def idle(self, name: str = "p") -> bool:
        """The name is forgotten: reads idle and holds no slot."""
        return (self.registry.status(name) == PipeStatus(name=name, state="idle")
                and self.registry.get(name) is None)


def world(settings: Settings | None = None) -> World:
    clock = Clock()
    registry = PipeRegistry(clock, settings or Settings())
    starter = Starter()
    starter.registry = registry
    registry.set_transfer_starter(starter)
    observer = Recorder()
    registry.add_observer(observer)
    return World(clock, registry, starter, observer)


def joined(outcome: Pipe | Refused) -> Pipe:
    """The pipe joined, or the refusal as the web layer words it."""
    if isinstance(outcome, Refused):
        raise wording.refusal(outcome)
    return outcome


def refused(call: Callable[[], object]) -> tuple[int, str, str]:
    with pytest.raises(Refusal) as info:
        call()
    return info.value.status, info.value.reason, info.value.code
