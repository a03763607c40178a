"""The URLs the watcher derives from the one it is given."""

from __future__ import annotations

import pytest

from hoodypipe.client.watch import feed_url, pipe_name, server_base


@pytest.mark.parametrize(
    ("url", "feed"),
    [
        ("http://h:8080/api/v1/pipe/x", "http://h:8080/api/v1/pipe/x?progress"),
        ("http://h/x?progress", "http://h/x?progress"),
        ("http://h/x?progress=1", "http://h/x?progress=1"),
        ("https://h/a%20b?n=2", "https://h/a%20b?n=2&progress"),
    ],
)
def test_feed_url(url: str, feed: str) -> None:
    assert feed_url(url) == feed


@pytest.mark.parametrize("bad", ["ftp://h/x", "h/x", "http:///x"])
def test_feed_url_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        feed_url(bad)


def test_names_and_bases() -> None:
    assert pipe_name("http://h/api/v1/pipe/a/b?progress") == "a/b"
    assert pipe_name("http://h/a%20b") == "a b"
    assert server_base("http://h:1/api/v1/pipe/a?progress") == "http://h:1"
