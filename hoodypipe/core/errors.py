"""The one kind of refusal every layer raises: a status code and a one-line reason."""

from __future__ import annotations


class Refusal(Exception):
    """A request refused with ``status`` and a one-line ``reason``.

    ``code`` is a short machine name for metrics and logs.
    """

    def __init__(self, status: int, reason: str, code: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.code = code

    @property
    def body(self) -> bytes:
        return f"[ERROR] {self.reason}\n".encode()
