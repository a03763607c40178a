"""
The parties of a pipe and its byte path, as the rules see them.

The web layer adapts HTTP requests to ``ISender``/``IReceiver`` (tests use
fakes); the byte path provides ``ITransfer``. Everything they are told is a
value from ``outcomes``: wording it is the web layer's job.
"""

from __future__ import annotations

import attrs
from twisted.internet.interfaces import IDelayedCall
from zope.interface import Interface

from hoodypipe.core.outcomes import Refused, SenderNews


class ISender(Interface):
    """The sending party, as the rules see it."""

    def tell(news: SenderNews) -> None:
        """One more line of the sender's status body."""

    def refuse(refused: Refused) -> None:
        """End the sender's status body with the reason it was given up."""


class IReceiver(Interface):
    """A receiving party that has not started streaming yet."""

    def refuse(refused: Refused) -> None:
        """Answer this receiver with an error instead of a body."""


class ITransfer(Interface):
    """A running byte path, as the rules see it."""

    def abort(reason: str) -> None:
        """Stop at once and fail every party with ``reason``."""


@attrs.define(eq=False)
class Party:
    """A sender or receiver on a pipe, with how long it waits and its timer."""

    handle: object
    wait: float
    wait_timer: IDelayedCall | None = None


def cancel(call: IDelayedCall | None) -> None:
    """Cancel a timer that may have run already (or never been set)."""
    if call is not None and call.active():
        call.cancel()
