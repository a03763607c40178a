"""Short human renderings of sizes, rates and durations (for summaries and the
terminal progress line)."""

from __future__ import annotations

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB")


def human_bytes(count: float | None) -> str:
    """``7_600_000_000`` -> ``"7.6 GB"`` (decimal units, as links are sold)."""
    if count is None:
        return "?"
    value = float(count)
    for unit in _UNITS:
        if abs(value) < 1000 or unit == _UNITS[-1]:
            if unit == "B":
                return f"{int(value)} B"
            return f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def human_rate(bytes_per_second: float | None) -> str:
    if bytes_per_second is None:
        return "?"
    return human_bytes(bytes_per_second) + "/s"


def human_duration(seconds: float | None) -> str:
    """``28920`` -> ``"8h 2m"``; short durations keep a decimal (``"0.4s"``)."""
    if seconds is None:
        return "?"
    if seconds < 10:
        return f"{max(0.0, seconds):.1f}s"
    whole = int(round(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"
