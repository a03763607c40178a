"""
The current speed of a transfer, from its byte counter sampled on a timer.

The byte path only keeps a running total; a spectator wants "how fast now",
so the watch group samples the total on its progress timer and this meter
turns the last few seconds of samples into bytes per second.  It never sees
a chunk, so it costs nothing on the byte path.
"""

from __future__ import annotations

from collections import deque


class RateMeter:
    """Bytes per second over a sliding window of (time, total) samples."""

    def __init__(self, window: float = 2.0, max_samples: int = 64) -> None:
        if window <= 0:
            raise ValueError("window must be positive")
        self._window = window
        self._samples: deque[tuple[float, int]] = deque(maxlen=max(2, max_samples))

    def reset(self) -> None:
        self._samples.clear()

    def sample(self, now: float, total: int) -> None:
        """Record the running total at reactor time ``now``."""
        if self._samples:
            last_time, last_total = self._samples[-1]
            if total < last_total or now < last_time:
                # A new transfer (or a clock step back): old samples lie.
                self._samples.clear()
            elif now == last_time:
                self._samples[-1] = (now, total)
                return
        self._samples.append((now, total))
        # Keep one sample at or before the window's start so the rate always
        # spans the whole window once enough history exists.
        while len(self._samples) > 2 and self._samples[1][0] <= now - self._window:
            self._samples.popleft()

    def rate(self) -> float:
        """Bytes per second across the samples kept (0.0 with fewer than two)."""
        if len(self._samples) < 2:
            return 0.0
        first_time, first_total = self._samples[0]
        last_time, last_total = self._samples[-1]
        elapsed = last_time - first_time
        if elapsed <= 0:
            return 0.0
        return (last_total - first_total) / elapsed
