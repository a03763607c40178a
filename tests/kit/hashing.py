"""A hash worker driven by hand: ``?sha256`` batches finish when a test says so.

It stands in for ``HashPool``'s thread, so a test decides when the hasher
catches up (or breaks) and can check the valve and the order in between.
"""

from __future__ import annotations

import attrs
from twisted.internet.defer import Deferred

from hoodypipe.bytepath.hasher import Piece, update_all


@attrs.define
class Batch:
    digest: object
    pieces: list[Piece]
    done: Deferred[None]


@attrs.define
class FakeRunner:
    """A worker that hashes only when the test says so."""

    batches: list[Batch] = attrs.Factory(list)

    def hash_pieces(self, digest: object, pieces: list[Piece]) -> Deferred[None]:
        batch = Batch(digest, pieces, Deferred())
        self.batches.append(batch)
        return batch.done

    def finish_next(self) -> Batch:
        batch = next(b for b in self.batches if not b.done.called)
        update_all(batch.digest, batch.pieces)  # type: ignore[arg-type]
        batch.done.callback(None)
        return batch

    def fail_next(self) -> None:
        batch = next(b for b in self.batches if not b.done.called)
        batch.done.errback(RuntimeError("the worker broke"))

    @property
    def in_flight(self) -> int:
        return sum(1 for b in self.batches if not b.done.called)
