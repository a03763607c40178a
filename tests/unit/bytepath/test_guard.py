"""The startup guard: passes on the installed Twisted, and fails at once,
naming the Twisted version and what is missing, when an internal the byte
path relies on has gone (each case monkeypatched away)."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.web import http

import twisted
from hoodypipe.bytepath.guard import TwistedMismatch, check_twisted
from hoodypipe.service import make_site
from hoodypipe.settings import Settings


def test_the_installed_twisted_passes() -> None:
    check_twisted()


def _fails(match: str) -> str:
    with pytest.raises(TwistedMismatch, match=match) as raised:
        check_twisted()
    message = str(raised.value)
    assert f"Twisted {twisted.__version__}" in message
    return message


def test_a_missing_chunked_decoder_class(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "_ChunkedTransferDecoder", None)  # (a module proxy: no delattr)
    _fails("_ChunkedTransferDecoder is gone")


def test_a_missing_refusal_method(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(http.HTTPChannel, "_respondToBadRequestAndDisconnect")
    _fails(r"HTTPChannel._respondToBadRequestAndDisconnect\(\) is gone")


def test_a_request_line_no_longer_on_the_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if a Twisted release kept the request line somewhere else."""
    original = http.HTTPChannel.lineReceived

    def line_received(self: Any, line: bytes) -> None:
        original(self, line)
        for name in ("_command", "_path"):
            self.__dict__.pop(name, None)

    monkeypatch.setattr(http.HTTPChannel, "lineReceived", line_received)
    message = _fails("HTTPChannel._command is not the request line's part")
    assert "HTTPChannel._path" in message and "_version" not in message


def test_a_decoder_without_a_finish_callback(monkeypatch: pytest.MonkeyPatch) -> None:
    original = http._ChunkedTransferDecoder.__init__

    def init(self: Any, *args: Any) -> None:
        original(self, *args)
        self.__dict__["finishCallback"] = None

    monkeypatch.setattr(http._ChunkedTransferDecoder, "__init__", init)
    _fails("_ChunkedTransferDecoder with a finishCallback")


def test_the_service_will_not_build_on_a_mismatched_twisted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(http.Request, "_disconnected")
    with pytest.raises(TwistedMismatch, match="Request._disconnected is gone"):
        make_site(None, None, Settings())  # type: ignore[arg-type]
