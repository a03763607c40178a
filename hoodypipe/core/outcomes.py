"""
What the rules decide, as values: the web layer words them.

The registry never builds a status code or a sentence. It refuses a party
with a ``Refused`` (which rule said no, and the figures that rule used) and
tells a waiting sender what happened with a ``SenderNews``; the web layer
turns each into its status code and its ``[INFO]``/``[ERROR]`` line in one
place, so the same decision always reads the same on the wire.

The reasons a transfer ends with (``SENDER_GONE`` ...) stay sentences: they
are data in every ``TransferResult`` (``done.reason`` for spectators,
webhooks and the transfer log), not only words for one response.
"""

from __future__ import annotations

import enum

import attrs

SENDER_GONE = "Sender disconnected"
IDLE_TIMEOUT = "Idle timeout"
SHUTTING_DOWN = "Server shutting down"
WAITED_OUT = "Timed out waiting for receivers"
START_FAILED = "Internal server error"


class Rule(enum.Enum):
    """The rule that refused a party."""

    #: The server is draining: no new pipe.
    DRAINING = "draining"
    #: Joining would make one waiting pipe too many.
    MAX_WAITING = "max_waiting"
    #: Joining would start (or open) a transfer beyond the active cap.
    MAX_ACTIVE = "max_active"
    #: Joining would hold one party (socket) too many in waiting and active pipes.
    MAX_PARTIES = "max_parties"
    #: The path already has its sender.
    SENDER_PRESENT = "sender_present"
    #: The path already has its n receivers.
    RECEIVERS_FULL = "receivers_full"
    #: The path is streaming: nobody joins a running transfer.
    IN_PROGRESS = "in_progress"
    #: The party asked for another n than the path's.
    N_MISMATCH = "n_mismatch"
    #: A receiver waited its ``?wait`` out without a sender.
    NO_SENDER = "no_sender"
    #: A party waited its ``?wait`` out without all the receivers.
    NO_RECEIVERS = "no_receivers"
    #: ``fail_all``: the server ends every pipe (``Refused.reason`` says why).
    SHUT_DOWN = "shut_down"
    #: The byte path could not be started.
    START_FAILED = "start_failed"


@attrs.frozen
class Refused:
    """A party refused by ``rule``; the other fields are the figures it used."""

    rule: Rule
    #: ``N_MISMATCH``: the path's n and the n the party asked for.
    expected_n: int = 0
    got_n: int = 0
    #: ``SHUT_DOWN``: why the server ends its pipes (the transfers' reason too).
    reason: str = SHUTTING_DOWN


class News(enum.Enum):
    """What a waiting sender is told, in the order things happen."""

    #: Just joined; ``count`` is the n it waits for.
    WAITING_FOR = "waiting_for"
    #: Just joined; ``count`` receivers were there before it.
    ALREADY_CONNECTED = "already_connected"
    RECEIVER_CONNECTED = "receiver_connected"
    RECEIVER_DISCONNECTED = "receiver_disconnected"
    #: The keep-alive; ``count`` receivers are still missing.
    STILL_WAITING = "still_waiting"
    #: Every party is there; ``count`` is n.
    STREAMING_TO = "streaming_to"


@attrs.frozen
class SenderNews:
    news: News
    count: int = 0


RECEIVER_CONNECTED = SenderNews(News.RECEIVER_CONNECTED)
RECEIVER_DISCONNECTED = SenderNews(News.RECEIVER_DISCONNECTED)
