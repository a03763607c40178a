"""
The words of the rules: every refusal and every sender status line the
registry decides, as clients see them.

The registry hands over values (``Refused``, ``SenderNews``); this module
is the one place they become a status code and a line. Clients parse these
lines (curl users read them, scripts match them), so each text is pinned by
the tests; change one only on purpose.
"""

from __future__ import annotations

from hoodypipe.core.errors import Refusal
from hoodypipe.core.outcomes import News, Refused, Rule, SenderNews

# rule -> (status, reason, code for metrics and logs)
_REFUSALS: dict[Rule, tuple[int, str, str]] = {
    Rule.DRAINING: (503, "Server is shutting down; try again shortly.", "draining"),
    Rule.MAX_WAITING: (429, "Too many waiting pipes; try again later.", "capacity"),
    Rule.MAX_ACTIVE: (429, "Server at maximum active transfer capacity.", "capacity"),
    Rule.MAX_PARTIES: (
        429, "Too many senders and receivers connected; try again later.", "capacity"),
    Rule.SENDER_PRESENT: (400, "Another sender is already connected on this path.", "busy"),
    Rule.RECEIVERS_FULL: (400, "The number of receivers has reached its limit.", "busy"),
    Rule.IN_PROGRESS: (400, "A transfer is already in progress on this path.", "busy"),
    Rule.N_MISMATCH: (
        400, "Number of receivers mismatch: this path expects n={expected_n}, "
        "got n={got_n}.", "mismatch"),
    Rule.NO_SENDER: (408, "Timed out waiting for sender.", "wait_timeout"),
    Rule.NO_RECEIVERS: (408, "Timed out waiting for receivers.", "wait_timeout"),
    Rule.SHUT_DOWN: (503, "{reason}.", "draining"),
    Rule.START_FAILED: (500, "Internal server error.", "internal"),
}

_NEWS: dict[News, str] = {
    News.WAITING_FOR: "[INFO] Waiting for {count} receiver(s) to connect...",
    News.ALREADY_CONNECTED: "[INFO] {count} receiver(s) already connected.",
    News.RECEIVER_CONNECTED: "[INFO] A receiver connected.",
    News.RECEIVER_DISCONNECTED: "[INFO] A receiver disconnected.",
    News.STILL_WAITING: "[INFO] Still waiting for {count} receiver(s)...",
    News.STREAMING_TO: "[INFO] Streaming to {count} receiver(s)...",
}


def refusal(refused: Refused) -> Refusal:
    """The status code and ``[ERROR]`` reason of a party the rules refused."""
    status, reason, code = _REFUSALS[refused.rule]
    return Refusal(status, reason.format(
        expected_n=refused.expected_n, got_n=refused.got_n, reason=refused.reason,
    ), code)


def sender_line(news: SenderNews) -> str:
    """One ``[INFO]`` line of a sender's status body."""
    return _NEWS[news.news].format(count=news.count)
