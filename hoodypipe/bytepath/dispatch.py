"""
The reactor's per-event dispatch, without the legacy log context around it.

Twisted's epoll reactor hands every ready descriptor to ``_doReadOrWrite``
through ``log.callWithLogger``: per event it asks the descriptor for its log
prefix, copies the legacy log context twice, pushes it and pops it again,
all so that a legacy ``log.msg`` made inside the callback is tagged with the
connection (``[HTTPChannel,5,127.0.0.1]``). For a sender paced by its disk
or network every read is such an event: ``bench/dispatch_cost.py`` puts the
wrapping at about 2 us of a 6.5 us event (a socketpair, 1 KiB), a few per
cent of the paced rows.

hoodypipe logs through ``twisted.logger``, whose events name their own
namespace, so it gives that tag up: ``use_lean_dispatch`` sets the
reactor's ``doIteration`` to ``lean_poll``, Twisted's ``doPoll`` calling
``_doReadOrWrite`` directly. What ``_doReadOrWrite`` already does is
unchanged: an exception from a read or a write is logged and ends that
connection. An exception that escapes it is logged as before, tagged with
the descriptor's prefix, and the loop goes on to the next event. What is
lost is the tag on the traceback ``_doReadOrWrite`` logs itself
(``[-]`` instead of the connection).

Below Twisted's public API: ``EPollReactor.doPoll``'s body (copied, less
the wrapper), its ``_poller``, ``_selectables`` and ``_doReadOrWrite``.
``lean_dispatch_possible`` checks them on the reactor at hand; any other
reactor (select, poll, a test's memory reactor, a subclass with its own
loop) is left as it is.
"""

from __future__ import annotations

import errno
import types
from typing import Any

from twisted.internet.epollreactor import EPollReactor
from twisted.logger import Logger
from twisted.python import log

_log = Logger()


def lean_poll(reactor: Any, timeout: float | None) -> None:
    """``EPollReactor.doPoll`` without ``log.callWithLogger`` per event."""
    if timeout is None:
        timeout = -1  # wait until something happens
    try:
        events = reactor._poller.poll(timeout, len(reactor._selectables))
    except OSError as err:
        if err.errno == errno.EINTR:
            return
        raise
    dispatch = reactor._doReadOrWrite
    selectables = reactor._selectables
    for fd, event in events:
        selectable = selectables.get(fd)
        if selectable is None:
            continue  # removed by an earlier event of this same poll
        try:
            dispatch(selectable, fd, event)
        except KeyboardInterrupt:
            raise
        except BaseException:
            _log_escaped(selectable)


def _log_escaped(selectable: Any) -> None:
    """What ``callWithLogger`` would have logged, with the same tag."""
    try:
        prefix = selectable.logPrefix()
    except Exception:
        prefix = "(buggy logPrefix method)"
    log.err(system=prefix)


def lean_dispatch_possible(reactor: object) -> bool:
    """An epoll reactor whose loop is still Twisted's ``doPoll``, as copied here."""
    return (
        isinstance(reactor, EPollReactor)
        and type(reactor).doIteration is EPollReactor.doPoll
        and "doIteration" not in vars(reactor)
        and isinstance(getattr(reactor, "_selectables", None), dict)
        and callable(getattr(getattr(reactor, "_poller", None), "poll", None))
        and callable(getattr(reactor, "_doReadOrWrite", None))
    )


def use_lean_dispatch(reactor: object) -> bool:
    """Make ``reactor`` dispatch with ``lean_poll``; False where it cannot.

    Only an epoll reactor is changed; on one that does not look the way
    ``lean_poll`` expects, a warning says so once and Twisted's own loop runs.
    """
    if not isinstance(reactor, EPollReactor):
        return False  # another kind of reactor: nothing of ours to offer it
    if "doIteration" in vars(reactor) and reactor.doIteration.__func__ is lean_poll:  # type: ignore[attr-defined]
        return True
    if not lean_dispatch_possible(reactor):
        _log.warn("this Twisted's epoll reactor is not what hoodypipe.bytepath.dispatch "
                  "expects: its own dispatch runs (slower per read)")
        return False
    reactor.doIteration = types.MethodType(lean_poll, reactor)  # type: ignore[method-assign]
    return True
