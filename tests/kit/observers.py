"""A recording ITransferObserver for the in-memory tests."""

from __future__ import annotations

from zope.interface import implementer

from hoodypipe.core.events import ITransferObserver, PipeStatus, TransferResult


@implementer(ITransferObserver)
class Recorder:
    def __init__(self) -> None:
        self.changes: list[PipeStatus] = []
        self.done: list[TransferResult] = []

    def pipe_changed(self, status: PipeStatus) -> None:
        self.changes.append(status)

    def transfer_done(self, result: TransferResult) -> None:
        self.done.append(result)

    def states(self, name: str) -> list[tuple[str, bool, int]]:
        return [(s.state, s.has_sender, s.receivers) for s in self.changes
                if s.name == name]
