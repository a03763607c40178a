"""The /noscript send page and the ?video player page, rendered in memory."""

from __future__ import annotations

import re

import pytest

from hoodypipe.web import noscript, videopage

BASE = "http://pipes.test"


def render(**query: str) -> str:
    args = {k.encode(): [v.encode("latin-1")] for k, v in query.items()}
    return noscript.render(args, BASE, nonce="NONCE").body.decode()


def forms(page: str) -> list[str]:
    return re.findall(r"<form[^>]*>", page)


@pytest.mark.parametrize(("given", "kept"), [
    ("plain", "plain"),
    ("a b/c!", "ab/c"),
    ("dir/sub-1.2_x~y", "dir/sub-1.2_x~y"),
    ('"><script>alert(1)</script>', "scriptalert1/script"),
    ("caf\xe9%20", "caf20"),
    ("", ""),
])
def test_clean_path_keeps_only_the_safe_alphabet(given: str, kept: str) -> None:
    assert noscript.clean_path(given) == kept


def test_upload_action_uses_the_api_prefix_unless_it_would_be_reserved() -> None:
    assert noscript.upload_action("x", None, False) == "/api/v1/pipe/x"
    assert noscript.upload_action("api/v1/pipe/x", None, False) == "/api/v1/pipe/api/v1/pipe/x"
    assert noscript.upload_action("health", None, False) == "/health"
    assert noscript.upload_action("metrics/", None, False) == "/metrics/"
    assert noscript.upload_action("x", "60", True) == "/api/v1/pipe/x?wait=60&sha256=1"


def test_without_a_path_only_the_chooser_is_shown_with_a_suggested_name() -> None:
    page = render()
    assert forms(page) == ['<form method="get">']
    assert re.search(r'name="path" value="send-[0-9a-f]{6}"', page)
    assert 'value="file" checked' in page


def test_a_path_gives_a_form_that_posts_the_file_to_the_pipe() -> None:
    page = render(path="a b/c!", mode="file")
    assert forms(page)[0] == ('<form method="post" action="/api/v1/pipe/ab/c" '
                              'enctype="multipart/form-data">')
    assert '<input id="file" type="file" name="file" required>' in page
    assert "<textarea" not in page
    assert "curl &#x27;http://pipes.test/api/v1/pipe/ab/c&#x27; &gt; received" in page
    assert 'name="path" value="ab/c"' in page


@pytest.mark.parametrize("mode", ["text", "TEXT", "Text"])
def test_text_mode_posts_a_text_field(mode: str) -> None:
    page = render(path="notes", mode=mode)
    assert '<textarea id="text" name="text" required></textarea>' in page
    assert 'type="file"' not in page
    assert 'value="text" checked' in page


@pytest.mark.parametrize("mode", ["", "FILE", "other", "text ", "texts"])
def test_any_other_mode_is_file(mode: str) -> None:
    assert 'type="file"' in render(path="p", mode=mode)


def test_wait_and_sha256_go_on_to_the_upload_when_valid() -> None:
    page = render(path="p", wait="120", sha256="1")
    assert 'action="/api/v1/pipe/p?wait=120&amp;sha256=1"' in page
    assert '<input type="hidden" name="wait" value="120">' in page
    for wait in ("0", "3601", "abc", "1.5", "99999"):
        assert "wait=" not in forms(render(path="p", wait=wait))[0]
    assert "sha256" not in render(path="p", sha256="no")


@pytest.mark.parametrize("path", ["a//b", "a/../b", "./x", "/x"])
def test_a_name_the_relay_would_refuse_shows_why_and_no_send_form(path: str) -> None:
    page = render(path=path)
    assert forms(page) == ['<form method="get">']
    assert '<p class="error">' in page


def test_the_page_has_no_script_and_allows_forms_to_this_origin_only() -> None:
    rendered = noscript.render({b"path": [b"p"]}, BASE, nonce="NONCE")
    page = rendered.body.decode()
    assert "<script" not in page
    assert '<style nonce="NONCE">' in page
    headers = dict(rendered.headers)
    csp = headers[b"Content-Security-Policy"].decode()
    assert "form-action 'self'" in csp and "default-src 'none'" in csp
    assert headers[b"X-Frame-Options"] == b"DENY"


def test_the_video_page_policy_and_nonce() -> None:
    rendered = videopage.render(nonce="N0NCE")
    page = rendered.body.decode()
    csp = dict(rendered.headers)[b"Content-Security-Policy"].decode()
    assert "default-src 'none'" in csp
    assert "connect-src 'self'" in csp
    assert "media-src blob:" in csp
    assert "script-src 'nonce-N0NCE'" in csp
    assert page.count('nonce="N0NCE"') == 2
    assert "{{" not in page
    for state in ("Waiting for stream…", "Connected", "Stream ended", "Click to unmute"):
        assert state in page
