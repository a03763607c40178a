"""
The process's heap: glibc malloc tuned for big socket reads, and freed
memory given back to the system once the relay goes idle.

A send is read in big pieces (``--read-size``, 512 KiB by default). With
glibc's defaults each such read is its own ``mmap`` (above the dynamic mmap
threshold), and with only the mmap threshold raised the heap top is trimmed
(128 KiB default threshold) as soon as a read is freed: either way the next
read faults its pages in again. Measured on one 256 MiB sized transfer,
a 128 KiB trim threshold cost about 180,000 minor page faults per GB
relayed and 1.0-1.2 server CPU-s/GB.

So reads up to ``MMAP_THRESHOLD`` (4 MiB) stay on the heap, and the heap
top is trimmed only past ``TRIM_THRESHOLD``: eight of the largest reads
that can be on the heap, well above what a few transfers churn through.
Measured the same way, 8, 32 and 128 MiB all relay with 10-1,000 faults per
GB (the storm is gone) and the same CPU-s/GB within the machine's noise,
alone or with 16 concurrent transfers; 32 MiB leaves room for a larger
``--read-size`` while releasing any heap top above it as soon as it is
freed.

That alone would keep a load peak's memory for good: after many concurrent
transfers the heap is full of free holes that no trim of the top releases
(after 120 concurrent 20 MB transfers the RSS stayed at 125 MB, from 59 MB).
``IdleTrimmer`` calls ``malloc_trim(0)`` (which also releases free pages in
the middle of every arena) a second after the last transfer ends, at most
once per ``min_interval``; no transfer is running then, so no read pays for
pages coming back (after the same burst: 64 MB within two seconds).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from zope.interface import implementer

from hoodypipe.core.events import ITransferObserver, PipeStatus, TransferResult

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 4 * 1024 * 1024
TRIM_THRESHOLD = 8 * MMAP_THRESHOLD


@functools.cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def tune_malloc(trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Keep big socket reads out of mmap and off the trim path (glibc only)."""
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, trim_threshold))


def malloc_trim() -> bool:
    """Give every free page of the heap back to the system (glibc only)."""
    trim = getattr(_libc(), "malloc_trim", None)
    return bool(trim(0)) if trim is not None else False


@implementer(ITransferObserver)
class IdleTrimmer:
    """Trims the heap a little after the last running transfer has ended."""

    def __init__(
        self,
        clock: IReactorTime,
        active: Callable[[], int],
        trim: Callable[[], object] = malloc_trim,
        delay: float = 1.0,
        min_interval: float = 10.0,
    ) -> None:
        self._clock = clock
        self._active = active
        self._trim = trim
        self._delay = delay
        self._min_interval = min_interval
        self._last: float | None = None
        self._call: IDelayedCall | None = None

    def pipe_changed(self, status: PipeStatus) -> None:
        pass

    def transfer_done(self, result: TransferResult) -> None:
        if self._active() == 0 and self._call is None:
            wait = self._delay
            if self._last is not None:
                wait = max(wait, self._last + self._min_interval - self._clock.seconds())
            self._call = self._clock.callLater(wait, self._run)

    def _run(self) -> None:
        self._call = None
        if self._active() == 0:
            self._last = self._clock.seconds()
            self._trim()

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
