"""
Each path's last transfer result, kept bounded by age and by count.

A latecomer hours after a transfer should still see how it ended, but a
server that sees millions of names must not remember them all: entries live
``ttl`` seconds and the oldest go first beyond ``max_count``.  Eviction is
lazy (on every read and write), which is exact for what callers can observe
and needs no timer.

With a ``store`` (``--state-dir``) every result is also handed to it, and
``restore`` puts what it kept back after a restart; the store applies the
same age and count limits to what it keeps.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Protocol

from hoodypipe.common.wire import JSONObject


class ResultSink(Protocol):
    """Where remembered results also go (``hoodypipe.spectators.store``)."""

    def save(self, name: str, stored_at: float, body: JSONObject) -> None: ...


class LastTransfers:
    def __init__(
        self, ttl: float, max_count: int, store: ResultSink | None = None
    ) -> None:
        self._ttl = ttl
        self._max = max_count
        self._store = store
        self._entries: OrderedDict[str, tuple[float, JSONObject]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def remember(self, name: str, body: JSONObject, now: float) -> None:
        """Keep ``body`` (a done event) as ``name``'s last transfer, as of ``now``."""
        self._entries.pop(name, None)
        self._entries[name] = (now, body)
        self._evict(now)
        if self._store is not None:
            self._store.save(name, now, body)

    def restore(self, entries: Iterable[tuple[str, float, JSONObject]], now: float) -> None:
        """Results kept from before a restart, ``(name, stored_at, body)`` oldest
        first; what is already remembered is newer and wins."""
        restored: OrderedDict[str, tuple[float, JSONObject]] = OrderedDict(
            (name, (stored_at, body)) for name, stored_at, body in entries
            if name not in self._entries)
        restored.update(self._entries)
        self._entries = restored
        self._evict(now)

    def get(self, name: str, now: float) -> JSONObject | None:
        self._evict(now)
        entry = self._entries.get(name)
        return None if entry is None else entry[1]

    def _evict(self, now: float) -> None:
        entries = self._entries
        while len(entries) > self._max:
            entries.popitem(last=False)
        while entries:
            stored_at, _ = next(iter(entries.values()))
            if now - stored_at < self._ttl:
                break
            entries.popitem(last=False)
