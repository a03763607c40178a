"""
A stand-in spectator feed for the watch client's tests: a Twisted resource
that plays one script per connection (events, then drop / end / hang, or a
bare status), and records what each connection asked for.

The kit is tested in ``tests/unit/kit/test_watchfeed_kit.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import attrs
from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

DROP = "drop"
END = "end"
HANG = "hang"


def block(
    event_id: int, event: str, data: dict[str, Any], retry: int | None = None
) -> bytes:
    head = f"retry: {retry}\n" if retry is not None else ""
    body = json.dumps(data, separators=(",", ":"))
    return f"{head}id: {event_id}\nevent: {event}\ndata: {body}\n\n".encode()


def state(event_id: int, name: str, retry: int | None = None) -> bytes:
    data = {"state": name, "receivers": 0, "hasSender": False, "totalReceivers": 1}
    return block(event_id, "state", data, retry)


def progress(event_id: int, moved: int, total: int | None = 1000) -> bytes:
    return block(event_id, "progress", {
        "bytes": moved, "totalBytes": total,
        "percent": None if not total else 100.0 * moved / total,
        "mbps": 1.0, "etaSec": 1.0, "elapsedSec": 1.0, "receivers": 1,
    })


def done(
    event_id: int, ok: bool = True, reason: str | None = None, sha256: str | None = None
) -> bytes:
    return block(event_id, "done", {
        "state": "complete" if ok else "failed", "ok": ok, "bytes": 1000,
        "durationSec": 2.0, "mbps": 0.0005, "reason": reason, "transferId": "tid-1",
        "sha256": sha256,
    })


@attrs.frozen
class Script:
    """One connection: ``status`` with ``blocks`` written then ``then``."""

    blocks: tuple[bytes, ...] = ()
    then: str = END
    status: int = 200
    content_type: str = "text/event-stream"
    gap: float = 0.01


@attrs.define
class Seen:
    uri: str
    accept: str | None
    last_event_id: str | None


class FakeFeed(Resource):
    isLeaf = True

    def __init__(self, scripts: list[Script]) -> None:
        super().__init__()
        self.scripts = list(scripts)
        self.seen: list[Seen] = []
        self.open: list[Request] = []

    def render_GET(self, request: Request) -> bytes | int:
        def header(name: bytes) -> str | None:
            value = request.getHeader(name)
            return None if value is None else value.decode()

        self.seen.append(Seen(request.uri.decode(), header(b"accept"),
                              header(b"last-event-id")))
        script = self.scripts.pop(0) if len(self.scripts) > 1 else self.scripts[0]
        request.setResponseCode(script.status)
        if script.status == 204:
            return b""
        request.setHeader(b"content-type", script.content_type.encode())
        if script.status != 200:
            return b"[ERROR] nope\n"
        self.open.append(request)
        request.notifyFinish().addBoth(lambda _: self.open.remove(request))
        self._play(request, list(script.blocks), script)
        return NOT_DONE_YET

    def _play(self, request: Request, blocks: list[bytes], script: Script) -> None:
        if request not in self.open:
            return
        if blocks:
            request.write(blocks.pop(0))
            reactor.callLater(script.gap, self._play, request, blocks, script)  # type: ignore[attr-defined]
            return
        if script.then == DROP:
            request.channel.transport.abortConnection()  # type: ignore[union-attr]
        elif script.then == END:
            request.finish()

    def close_all(self) -> None:
        for request in list(self.open):
            request.channel.transport.abortConnection()  # type: ignore[union-attr]


#: Starts a fake feed on loopback with these scripts; gives it and its URL.
Serve = Callable[[list["Script"]], tuple["FakeFeed", str]]
