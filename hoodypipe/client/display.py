"""
What ``hoodypipe watch`` shows while it follows a feed: a live line redrawn
in place on a terminal, one line per state change when the output is a
file or a pipe, or every event as a JSON line (``--json``) for a script.

Displays only write text; they never decide anything about the watch, so
the watch loop is the same whatever the output.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from typing import Any, TextIO

from hoodypipe.client.sse import SSEEvent
from hoodypipe.common.humanize import human_bytes, human_duration, human_rate
from hoodypipe.common.pagerduty import summary


class Display:
    """Where the watcher's events and notices go; the base shows nothing."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out = out
        self.err = err

    def event(self, event: SSEEvent, data: Any) -> None:
        pass

    def notice(self, message: str) -> None:
        self.err.write(f"hoodypipe watch: {message}\n")
        self.err.flush()

    def done(self, name: str, data: dict[str, Any]) -> None:
        pass


class JSONLinesDisplay(Display):
    """``--json``: one ``{"event": ..., "data": ...}`` line per event."""

    def event(self, event: SSEEvent, data: Any) -> None:
        line = json.dumps({"event": event.event, "data": data}, separators=(",", ":"))
        self.out.write(line + "\n")
        self.out.flush()


class PlainDisplay(Display):
    """Not a terminal: state changes and the outcome, one line each."""

    def __init__(self, out: TextIO, err: TextIO, name: str) -> None:
        super().__init__(out, err)
        self.name = name
        self._last_state: str | None = None

    def event(self, event: SSEEvent, data: Any) -> None:
        if event.event != "state" or not isinstance(data, dict):
            return
        line = describe_state(self.name, data)
        if line != self._last_state:
            self._last_state = line
            self.out.write(line + "\n")
            self.out.flush()

    def done(self, name: str, data: dict[str, Any]) -> None:
        self.out.write(summary(name, data).removeprefix("hoodypipe: ") + "\n")
        digest = data.get("sha256")
        if isinstance(digest, str):
            self.out.write(f"sha256: {digest}\n")
        self.out.flush()


class TerminalDisplay(PlainDisplay):
    """A terminal: one line redrawn in place (bytes, percent, speed, ETA)."""

    def __init__(
        self,
        out: TextIO,
        err: TextIO,
        name: str,
        width: Callable[[], int] = lambda: shutil.get_terminal_size().columns,
    ) -> None:
        super().__init__(out, err, name)
        self._width = width
        self._line = ""

    def _draw(self, line: str) -> None:
        self._line = line[: max(10, self._width() - 1)]
        self.out.write("\r\x1b[K" + self._line)
        self.out.flush()

    def _clear(self) -> None:
        if self._line:
            self.out.write("\r\x1b[K")
            self.out.flush()

    def event(self, event: SSEEvent, data: Any) -> None:
        if not isinstance(data, dict):
            return
        if event.event == "state":
            self._draw(describe_state(self.name, data))
        elif event.event == "progress":
            self._draw(describe_progress(self.name, data))

    def notice(self, message: str) -> None:
        self._clear()
        super().notice(message)
        if self._line:
            self._draw(self._line)

    def done(self, name: str, data: dict[str, Any]) -> None:
        self._clear()
        self._line = ""
        super().done(name, data)


def describe_state(name: str, data: dict[str, Any]) -> str:
    state = data.get("state", "?")
    if state in ("idle", "waiting"):
        sender = "connected" if data.get("hasSender") else "not yet"
        wanted = data.get("totalReceivers") or "?"
        receivers = data.get("receivers", 0)
        return f"{name}: {state} (sender {sender}, receivers {receivers}/{wanted})"
    return f"{name}: {state}"


def describe_progress(name: str, data: dict[str, Any]) -> str:
    moved = human_bytes(data.get("bytes"))
    total = data.get("totalBytes")
    parts = [f"{name}: {moved}" + (f" / {human_bytes(total)}" if total else "")]
    percent = data.get("percent")
    if isinstance(percent, (int, float)):
        parts.append(f"{percent:5.1f}%")
    mbps = data.get("mbps")
    if isinstance(mbps, (int, float)):
        parts.append(human_rate(mbps * 1e6))
    eta = data.get("etaSec")
    if isinstance(eta, (int, float)):
        parts.append(f"ETA {human_duration(eta)}")
    elapsed = data.get("elapsedSec")
    if isinstance(elapsed, (int, float)):
        parts.append(f"elapsed {human_duration(elapsed)}")
    return "  ".join(parts)
