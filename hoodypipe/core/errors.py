"""The one kind of refusal every HTTP answer is made of: a status code and a
one-line reason. (The registry decides with ``outcomes.Refused``; the web
layer words that as a ``Refusal``.)"""

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
