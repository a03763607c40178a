"""Every decision of the rules, worded: the status code and the exact line.

Clients read these lines (the sender's status body, the ``[ERROR]`` of a
refusal); each one is pinned here, and every rule and every piece of news
the registry can hand over has its words.
"""

from __future__ import annotations

import pytest

from hoodypipe.core.outcomes import News, Refused, Rule, SenderNews
from hoodypipe.web.wording import refusal, sender_line

REFUSALS = {
    Refused(Rule.DRAINING): (503, "Server is shutting down; try again shortly.", "draining"),
    Refused(Rule.MAX_WAITING): (429, "Too many waiting pipes; try again later.", "capacity"),
    Refused(Rule.MAX_ACTIVE): (429, "Server at maximum active transfer capacity.", "capacity"),
    Refused(Rule.MAX_PARTIES): (
        429, "Too many senders and receivers connected; try again later.", "capacity"),
    Refused(Rule.SENDER_PRESENT): (
        400, "Another sender is already connected on this path.", "busy"),
    Refused(Rule.RECEIVERS_FULL): (
        400, "The number of receivers has reached its limit.", "busy"),
    Refused(Rule.IN_PROGRESS): (400, "A transfer is already in progress on this path.", "busy"),
    Refused(Rule.N_MISMATCH, expected_n=2, got_n=3): (
        400, "Number of receivers mismatch: this path expects n=2, got n=3.", "mismatch"),
    Refused(Rule.NO_SENDER): (408, "Timed out waiting for sender.", "wait_timeout"),
    Refused(Rule.NO_RECEIVERS): (408, "Timed out waiting for receivers.", "wait_timeout"),
    Refused(Rule.SHUT_DOWN): (503, "Server shutting down.", "draining"),
    Refused(Rule.SHUT_DOWN, reason="Maintenance {n}"): (503, "Maintenance {n}.", "draining"),
    Refused(Rule.START_FAILED): (500, "Internal server error.", "internal"),
}

LINES = {
    SenderNews(News.WAITING_FOR, 3): "[INFO] Waiting for 3 receiver(s) to connect...",
    SenderNews(News.ALREADY_CONNECTED, 2): "[INFO] 2 receiver(s) already connected.",
    SenderNews(News.RECEIVER_CONNECTED): "[INFO] A receiver connected.",
    SenderNews(News.RECEIVER_DISCONNECTED): "[INFO] A receiver disconnected.",
    SenderNews(News.STILL_WAITING, 1): "[INFO] Still waiting for 1 receiver(s)...",
    SenderNews(News.STREAMING_TO, 256): "[INFO] Streaming to 256 receiver(s)...",
}


@pytest.mark.parametrize("refused", list(REFUSALS), ids=lambda r: r.rule.value)
def test_each_refusal_is_a_status_and_one_error_line(refused: Refused) -> None:
    answer = refusal(refused)
    assert (answer.status, answer.reason, answer.code) == REFUSALS[refused]
    assert answer.body == f"[ERROR] {answer.reason}\n".encode()


def test_every_rule_has_its_words() -> None:
    assert {refused.rule for refused in REFUSALS} == set(Rule)


@pytest.mark.parametrize("news", list(LINES), ids=lambda n: n.news.value)
def test_each_sender_line(news: SenderNews) -> None:
    assert sender_line(news) == LINES[news]


def test_every_piece_of_news_has_its_words() -> None:
    assert {news.news for news in LINES} == set(News)
