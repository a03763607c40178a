"""
``/noscript``: sending from a browser with JavaScript turned off.

Plain HTML can only post a form to a URL written in the page, so the pipe's
name is chosen first: a GET form reloads ``/noscript?path=NAME&mode=file|text``
and the page then carries a second form whose ``action`` is that pipe. It
posts ``multipart/form-data`` (a file part, or a ``text`` field), which the
relay unwraps (see ``bytepath/multipart.py``); the browser then shows the
sender's status lines. ``wait`` and ``sha256`` given to the page go on to the
upload.

Every value taken from the query is cut to a safe alphabet or validated
before it is written into the page, and escaped as well. The page has no
script; its policy allows its own style and forms posting to this origin.
"""

from __future__ import annotations

import html
import re
import secrets
from functools import cache
from importlib import resources

from twisted.web.server import Request

from hoodypipe.core.errors import Refusal
from hoodypipe.web import pagekit
from hoodypipe.web.flags import is_on
from hoodypipe.web.names import validate_name

_NOT_IN_PATH = re.compile(r"[^A-Za-z0-9\-._~/]")
_WAIT = re.compile(r"[0-9]{1,4}")
API = "/api/v1/pipe/"
RESERVED_UNDER_API = ("health", "metrics")


@cache
def template() -> str:
    return resources.files("hoodypipe.web").joinpath("noscript.html").read_text(encoding="utf-8")


def clean_path(value: str) -> str:
    """A ``?path=`` value with every character outside ``A-Za-z0-9-._~/`` dropped."""
    return _NOT_IN_PATH.sub("", value)


def upload_action(path: str, wait: str | None, sha256: bool) -> str:
    """Where the send form posts: the pipe, under the API prefix unless that
    prefix would turn it into a reserved endpoint."""
    base = "/" if path.rstrip("/") in RESERVED_UNDER_API else API
    query = [f"wait={wait}"] if wait else []
    if sha256:
        query.append("sha256=1")
    return base + path + ("?" + "&".join(query) if query else "")


def _last(args: dict[bytes, list[bytes]], key: bytes) -> str | None:
    values = args.get(key)
    return values[-1].decode("latin-1") if values else None


def _wait(args: dict[bytes, list[bytes]]) -> str | None:
    value = _last(args, b"wait")
    if value is None or not _WAIT.fullmatch(value) or not 1 <= int(value) <= 3600:
        return None
    return str(int(value))


def render(args: dict[bytes, list[bytes]], base: str, nonce: str | None = None) -> pagekit.Page:
    """The page for query ``args``; ``base`` is this server's URL for the curl line."""
    nonce = nonce or pagekit.new_nonce()
    given = _last(args, b"path")
    path = clean_path(given)[:1024] if given is not None else ""
    mode = "text" if (_last(args, b"mode") or "").lower() == "text" else "file"
    wait = _wait(args)
    error = None
    if path:
        try:
            validate_name(path.encode("ascii"))
        except Refusal as refusal:
            error = refusal.reason
    sections = []
    if path and error is None:
        sections.append(_send_form(path, mode, wait, is_on(args, b"sha256"), base))
    sections.append(_choose_form(path or "send-" + secrets.token_hex(3), mode, wait,
                                 is_on(args, b"sha256"), error, chosen=bool(path)))
    body = template().replace("{{nonce}}", nonce).replace("{{sections}}", "\n".join(sections))
    return pagekit.page(body, nonce, form_action="'self'")


def _send_form(path: str, mode: str, wait: str | None, sha256: bool, base: str) -> str:
    e = html.escape
    if mode == "text":
        field = ('<div class="field"><label for="text">Text</label>'
                 '<textarea id="text" name="text" required></textarea></div>')
    else:
        field = ('<div class="field"><label for="file">File</label>'
                 '<input id="file" type="file" name="file" required></div>')
    url = base + upload_action(path, wait, False)
    receive = f"curl '{url}' > received" if mode == "file" else f"curl '{url}'"
    return (
        '<section class="card">\n<h1>Send</h1>\n'
        f'<p>To the pipe <span class="pipe">{e(path)}</span>. The page then shows how '
        "the transfer goes; it waits until the receiver is there.</p>\n"
        f'<form method="post" action="{e(upload_action(path, wait, sha256))}" '
        'enctype="multipart/form-data">\n'
        f"{field}\n"
        '<button class="primary" type="submit">Send</button>\n</form>\n'
        '<span class="label receive">Receive with curl</span>\n'
        f"<code class=\"command\">{e(receive)}</code>\n</section>"
    )


def _choose_form(
    path: str, mode: str, wait: str | None, sha256: bool, error: str | None, chosen: bool,
) -> str:
    e = html.escape
    checked = {m: " checked" if m == mode else "" for m in ("file", "text")}
    hidden = f'<input type="hidden" name="wait" value="{e(wait)}">\n' if wait else ""
    if sha256:
        hidden += '<input type="hidden" name="sha256" value="1">\n'
    problem = f'<p class="error">{e(error)}</p>\n' if error else ""
    title = "Another pipe" if chosen and error is None else "Send without JavaScript"
    intro = ("" if chosen and error is None else
             "<p>Choose the pipe's name (letters, digits, <code>- . _ ~ /</code>) and what "
             "to send; the next page has the form.</p>\n")
    return (
        f'<section class="card">\n<h1>{title}</h1>\n{intro}{problem}'
        '<form method="get">\n'
        '<div class="field"><label for="path">Pipe name</label>'
        f'<input id="path" type="text" name="path" value="{e(path)}" maxlength="1024" '
        'required autocapitalize="off" autocorrect="off" spellcheck="false"></div>\n'
        '<fieldset><legend class="label">Send</legend>'
        f'<label><input type="radio" name="mode" value="file"{checked["file"]}> a file</label>'
        f'<label><input type="radio" name="mode" value="text"{checked["text"]}> text</label>'
        "</fieldset>\n"
        f"{hidden}"
        '<button type="submit">Use this pipe</button>\n</form>\n</section>'
    )


def serve(request: Request, base: str) -> tuple[bytes, bytes]:
    """Set the page's headers on ``request``; the body and its Content-Type."""
    return pagekit.serve(request, render(request.args, base))
