"""
``lastTransfer`` results that survive a restart: one sqlite3 row per path.

The person who started an eight-hour transfer and reopens its URL at sunrise
must see how it ended even if the server was restarted in the night. With
``--state-dir`` every result ``LastTransfers`` remembers is also written
here, and read back when the server starts.

Nothing here is on the byte path, or on the reactor thread once the server
runs: a transfer's end hands the row to one worker thread (rows that come
while it writes are coalesced, one per path, so the backlog is bounded by
the number of paths), and the worker writes them in one transaction, then
drops rows past the ``ttl`` and beyond ``max_count``. Only the read at
startup is synchronous, before the listeners open.

A store that cannot be used (corrupt, locked by another process, read-only,
not a directory) is logged once, then the relay carries on with results in
memory only, and the store is tried again at the next write; when it works
again, that is logged too.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorFromThreads, IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from hoodypipe.common.wire import JSONObject

FILE_NAME = "results.sqlite3"
#: Seconds a statement waits for another process's lock before failing.
LOCK_TIMEOUT = 2.0

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS last_transfer ("
    " name TEXT PRIMARY KEY NOT NULL,"
    " stored_at REAL NOT NULL,"
    " body TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS last_transfer_age ON last_transfer (stored_at)",
)
_UPSERT = (
    "INSERT INTO last_transfer (name, stored_at, body) VALUES (?, ?, ?)"
    " ON CONFLICT (name) DO UPDATE SET stored_at = excluded.stored_at,"
    " body = excluded.body"
)
_EXPIRE = "DELETE FROM last_transfer WHERE stored_at <= ?"
_BEYOND_COUNT = (
    "DELETE FROM last_transfer WHERE name IN (SELECT name FROM last_transfer"
    " ORDER BY stored_at DESC LIMIT -1 OFFSET ?)"
)
_NEWEST = (
    "SELECT name, stored_at, body FROM last_transfer WHERE stored_at > ?"
    " ORDER BY stored_at DESC LIMIT ?"
)

Row = tuple[str, float, JSONObject]


class ResultStore(Service):
    """The sqlite3 file ``results.sqlite3`` in the state directory."""

    log = Logger()

    def __init__(
        self,
        reactor: IReactorFromThreads,
        clock: IReactorTime,
        directory: str,
        ttl: float,
        max_count: int,
        lock_timeout: float = LOCK_TIMEOUT,
    ) -> None:
        self._reactor = reactor
        self._clock = clock
        self.path = Path(directory) / FILE_NAME
        self._ttl = ttl
        self._max = max_count
        self._lock_timeout = lock_timeout
        self._pool = ThreadPool(minthreads=0, maxthreads=1, name="hoodypipe-results")
        self._pending: dict[str, tuple[float, str]] = {}
        self._writing = False
        self._idle: list[Deferred[None]] = []
        self._connection: sqlite3.Connection | None = None  # the worker's own
        self.trouble: str | None = None  # why the store is unusable, once logged
        self.writes = 0  # batches written (for tests and curiosity)

    # -- startup ------------------------------------------------------------

    def load(self, now: float) -> list[Row]:
        """Results younger than the ttl, oldest first, at most ``max_count``."""
        try:
            with closing(self._connect()) as connection:
                rows = connection.execute(_NEWEST, (now - self._ttl, self._max)).fetchall()
        except (sqlite3.Error, OSError) as e:
            self._failed(e, "reading")
            return []
        loaded: list[Row] = []
        for name, stored_at, text in reversed(rows):
            body = _decode(text)
            if isinstance(name, str) and isinstance(stored_at, (int, float)) and body:
                loaded.append((name, float(stored_at), body))
        self.log.info("results store {path}: {count} lastTransfer result(s) read back",
                      path=str(self.path), count=len(loaded))
        return loaded

    def _connect(self) -> sqlite3.Connection:
        """Open (creating the directory and the table if need be)."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        connection = sqlite3.connect(
            self.path, timeout=self._lock_timeout, isolation_level=None,
            check_same_thread=False)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            for statement in _SCHEMA:
                connection.execute(statement)
        except BaseException:
            connection.close()
            raise
        return connection

    # -- from the reactor thread ----------------------------------------------

    def save(self, name: str, stored_at: float, body: JSONObject) -> None:
        """Keep ``body`` as ``name``'s result: written soon, in the worker."""
        self._pending[name] = (stored_at, json.dumps(body, separators=(",", ":")))
        if not self._writing:
            self._write_pending()

    def _write_pending(self) -> None:
        rows, self._pending = self._pending, {}
        self._writing = True
        cutoff = self._clock.seconds() - self._ttl
        done = deferToThreadPool(self._reactor, self._pool, self._write, rows, cutoff)
        done.addBoth(self._written)

    def _written(self, outcome: None | Failure) -> None:
        self._writing = False
        if isinstance(outcome, Failure):
            error = outcome.value
            if isinstance(error, (sqlite3.Error, OSError)):
                self._failed(error, "writing")
            else:
                self.log.failure("results store {path}: writing failed", outcome,
                                 path=str(self.path))
        else:
            self.writes += 1
            if self.trouble is not None:
                self.log.info("results store {path} works again", path=str(self.path))
                self.trouble = None
        if self._pending:
            self._write_pending()
        else:
            idle, self._idle = self._idle, []
            for waiting in idle:
                waiting.callback(None)

    def _failed(self, error: BaseException, doing: str) -> None:
        """Log the first failure of a run of them; the relay goes on without."""
        if self.trouble is None:
            self.trouble = f"{type(error).__name__}: {error}"
            self.log.error(
                "results store {path} cannot be used ({doing}: {why}); lastTransfer "
                "results are kept in memory only until it works again",
                path=str(self.path), doing=doing, why=self.trouble)

    def flushed(self) -> Deferred[None]:
        """Fires once every row handed over so far is written (or failed)."""
        if not self._writing and not self._pending:
            return succeed(None)
        waiting: Deferred[None] = Deferred()
        self._idle.append(waiting)
        return waiting

    # -- in the worker thread ------------------------------------------------

    def _write(self, rows: dict[str, tuple[float, str]], cutoff: float) -> None:
        try:
            connection = self._connection
            if connection is None:
                connection = self._connection = self._connect()
            with _transaction(connection):
                connection.executemany(
                    _UPSERT, [(name, at, text) for name, (at, text) in rows.items()])
                connection.execute(_EXPIRE, (cutoff,))
                connection.execute(_BEYOND_COUNT, (self._max,))
        except BaseException:
            self._close()  # a fresh connection next time, in case it was the file
            raise

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except sqlite3.Error:
                pass

    # -- the service --------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._pool.start()

    def stopService(self) -> Deferred[None]:
        """After the drain: write what is left, then join the worker."""
        super().stopService()

        def stop(_: object) -> None:
            self._pool.stop()
            self._close()

        return self.flushed().addCallback(stop)


@contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """One explicit transaction (the connection is in autocommit mode)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        try:
            connection.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # closing the connection rolls back anyway
        raise
    connection.execute("COMMIT")


def _decode(text: object) -> JSONObject | None:
    """A stored body, or None for a row that is not a JSON object."""
    if not isinstance(text, str):
        return None
    try:
        body = json.loads(text)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
