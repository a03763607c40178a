"""The send page's template, rendered in memory (the page in a browser: tests/live/web)."""

from __future__ import annotations

from hoodypipe.web import sendpage


def test_render_fills_only_the_nonce() -> None:
    page = sendpage.render("fixed-nonce-for-test")
    body = page.body.decode()
    assert body.count("fixed-nonce-for-test") == 2
    assert "{{" not in body
    headers = dict(page.headers)
    assert b"'nonce-fixed-nonce-for-test'" in headers[b"Content-Security-Policy"]
    assert headers[b"Cache-Control"] == b"no-store"
