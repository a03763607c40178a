"""
Hypothesis against the real service over raw sockets: methods, paths
(encoded slashes, dots, unicode escapes, very long), queries (repeated, odd
values) and headers (hostile Content-Types, Service-Worker, Accept...) are
sent exactly as generated, malformed ones included.

For every request: an answer within a few seconds, never a 5xx, and every
error is a ``text/plain`` body of one line starting ``[ERROR] ``.  After a
run, nothing is left registered and the log holds no traceback.

The run is bounded: the service answers a party's wait after 0.3 s by
default and allows ``?wait=1`` at most, senders are read only up to their
response head, and each test has a fixed number of examples.
"""

from __future__ import annotations

import socket
import string
import time
from collections.abc import Iterator

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.kit.clients import get_json, nothing_registered
from tests.kit.service import Service, running_service

#: Seconds a request may take to be answered (its wait is at most 1 s).
ANSWER_WITHIN = 5.0
FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(tmp_path_factory.mktemp("fuzz"), "--default-wait", "0.3",
                         "--max-wait", "1", "--linger", "1") as started:
        yield started


# -- talking to the server ---------------------------------------------------------------


@attrs.frozen
class Answer:
    status: int
    head: bytes
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


def exchange(port: int, request: bytes, head_only: bool) -> Answer | None:
    """Send ``request`` and read the final response; None if the server
    closed without one.  Fails the test if nothing comes in time."""
    deadline = time.monotonic() + ANSWER_WITHIN
    with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_WITHIN) as raw:
        try:
            raw.sendall(request)
        except OSError:
            pass  # refused before the whole request was read: read the answer
        data = b""
        while True:
            end = data.find(b"\r\n\r\n")
            if end != -1 and data.startswith(b"HTTP/1.1 1"):
                data = data[end + 4:]  # 100 Continue: the final answer follows
                continue
            if end != -1:
                head, rest = data[:end], data[end + 4:]
                status = int(head.split(b" ", 2)[1])
                length = _content_length(head)
                if head_only or status < 400 or length is None or len(rest) >= length:
                    return Answer(status, head, rest if length is None else rest[:length])
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no answer in {ANSWER_WITHIN}s to {request[:300]!r}"
            raw.settimeout(remaining)
            try:
                chunk = raw.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                if end != -1:
                    head, rest = data[:end], data[end + 4:]
                    return Answer(int(head.split(b" ", 2)[1]), head, rest)
                return None
            data += chunk


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"content-length":
            return int(value.strip())
    return None


def check_answer(answer: Answer, method: bytes, request: bytes) -> None:
    context = f"{request[:300]!r} -> {answer.head[:300]!r} {answer.body[:200]!r}"
    assert answer.status < 500, context
    if answer.status >= 400 and method != b"HEAD":
        assert answer.header(b"content-type") == b"text/plain; charset=utf-8", context
        assert answer.body.startswith(b"[ERROR] "), context
        assert answer.body.endswith(b"\n") and answer.body.count(b"\n") == 1, context


def clean_afterwards(relay: Service) -> None:
    nothing_registered(relay.base)
    health = get_json(f"{relay.base}/api/v1/pipe/health")
    assert health["status"] == "ok"
    log = relay.log()
    assert "Traceback" not in log and "Unhandled" not in log, log[-3000:]


# -- what is generated -------------------------------------------------------------------

TCHAR = "!#$%&'*+-.^_`|~" + string.digits + string.ascii_letters
# Visible ASCII a request line can carry (no space, which ends the target).
VISIBLE = "".join(chr(c) for c in range(0x21, 0x7F))

# one_of picks each of its strategies alike: the ordinary ones are listed
# more than once so that most requests reach the pipe logic.
common_methods = st.sampled_from([b"GET", b"GET", b"GET", b"POST", b"PUT", b"HEAD",
                                  b"OPTIONS", b"DELETE", b"PATCH", b"TRACE", b"CONNECT",
                                  b"PROPFIND", b"get", b"Put"])
methods = st.one_of(common_methods, common_methods, common_methods,
                    st.text(TCHAR, min_size=1, max_size=10).map(str.encode))
names = st.text(string.ascii_letters + string.digits + "-._~", min_size=1, max_size=12)
segments = st.one_of(
    names, names,
    st.sampled_from([
        "a", "pipe", "x.txt", ".", "..", "", "%2F", "%2f", "%5C", "%5c", "%2e", "%2E%2e",
        ".%2e", "%00", "%0a", "%0D", "%1b", "%7f", "%ff", "%C3%A9", "caf%C3%A9",
        "%F0%9F%92%A9", "%E2%80%AE", "%252F", "~", "api", "v1", "pipe", "health",
        "metrics", "robots.txt", "help", "favicon.ico", "noscript", "*", "%", "%zz",
        "%%", ";", ";a=b", "a" * 1030, "%41" * 400,
    ]),
    st.text(VISIBLE.replace("?", "").replace("#", "").replace("/", ""), max_size=30),
)
paths = st.builds(
    lambda prefix, parts: (prefix + "/".join(parts)) or "/",
    st.sampled_from(["/", "/", "/", "/", "/", "/api/v1/pipe/", "/api/v1/pipe/", "", "//",
                     "http://h/", "https://h:1/api/v1/pipe/", "ftp://h/", "*"]),
    st.lists(segments, min_size=0, max_size=4),
)
query_keys = st.one_of(
    st.sampled_from(["n", "wait", "size", "progress", "status", "video", "download",
                     "filename", "sha256", "N", "%6E", "w%61it", "x", "", "n+", "progress;"]),
    st.text(VISIBLE.replace("&", "").replace("=", "").replace("#", ""), max_size=8),
)
query_values = st.one_of(
    st.sampled_from(["1", "1", "2", "10M"]),
    st.sampled_from(["", "1", "0", "2", "256", "257", "abc", "1.5", "-1", "+1", "1e3", "0x10",
                     "9999999999999999999", "9999999999999999999Ti", "9223372036854775807",
                     "10M", "2Gi", "%00", "%FF", "%C2%B2", "true", "false", "no", "0" * 50]),
    st.text(VISIBLE.replace("&", "").replace("#", ""), max_size=12),
)
queries = st.lists(
    st.tuples(query_keys, st.one_of(st.none(), query_values)), max_size=4,
).map(lambda pairs: "&".join(k if v is None else f"{k}={v}" for k, v in pairs))

HOSTILE_TYPES = [
    "text/html", "text/html x", 'text/html "', "text/html(", "image/svg+xml x",
    "text/x-javascript", "application/xhtml+xml", "*/*", "text/plain; charset=utf-8",
    "multipart/form-data; boundary=x", "application/json, text/html", "", ";",
    'text/plain; charset="\xe9"', "x" * 2000,
]
header_names = st.sampled_from([
    "Content-Type", "Content-Type", "Service-Worker", "Accept", "Accept", "Host",
    "X-Piping", "X-Hoody-Pipe", "Content-Disposition", "Content-Range", "Last-Event-ID",
    "Range", "Origin", "Access-Control-Request-Headers", "Expect", "Cookie", "Referer",
    "X-Forwarded-Proto", "Upgrade", "If-None-Match", "Sec-Fetch-Dest",
])
header_values = st.one_of(
    st.sampled_from(HOSTILE_TYPES + [
        "script", "text/html", "text/event-stream", "application/json", "100-continue",
        "bytes 0-0/1", "bytes=0-", "worker", "serviceworker", "h2c", "websocket",
        "text/html;q=0.9, application/json", "0", "99999999999999999999", "https",
    ]),
    # field-content: visible ASCII, SP/HTAB and obs-text, never CR, LF or NUL
    st.text("".join(chr(c) for c in range(0x20, 0x7F)) + "\t\xe9\xff", max_size=40),
)
headers = st.lists(st.tuples(header_names, header_values), max_size=5)
bodies = st.one_of(st.just(b""), st.binary(max_size=300),
                   st.sampled_from([b"<script>alert(1)</script>", b"\x00" * 10]))


def build(method: bytes, path: str, query: str, fields: list[tuple[str, str]], body: bytes,
          chunked: bool) -> bytes:
    target = path.encode("latin-1") + (b"?" + query.encode("latin-1") if query else b"")
    lines = [method + b" " + target + b" HTTP/1.1"]
    if not any(name == "Host" for name, _ in fields):
        lines.append(b"Host: fuzz.test")
    lines.extend(f"{name}: {value}".encode("latin-1") for name, value in fields)
    lines.append(b"Connection: close")
    if chunked:
        lines.append(b"Transfer-Encoding: chunked")
        framed = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
    else:
        lines.append(b"Content-Length: %d" % len(body))
        framed = body
    return b"\r\n".join(lines) + b"\r\n\r\n" + framed


# -- the properties ------------------------------------------------------------------------


def test_requests_of_every_shape_get_an_answer_and_never_a_5xx(relay: Service) -> None:
    @settings(FUZZ, max_examples=300)
    @given(method=methods, path=paths, query=queries, fields=headers, body=bodies,
           chunked=st.booleans())
    def one(method: bytes, path: str, query: str, fields: list[tuple[str, str]],
            body: bytes, chunked: bool) -> None:
        request = build(method, path, query, fields, body, chunked)
        # Senders are answered 200 at once and then stream status lines: the
        # head is the answer.  Everything else is read whole.
        answer = exchange(relay.port, request, head_only=method in (b"POST", b"PUT"))
        assert answer is not None, f"closed without an answer: {request[:300]!r}"
        check_answer(answer, method, request)

    one()
    clean_afterwards(relay)


@attrs.define
class Bare:
    """Refusals Twisted's channel makes by itself, before the relay sees a request."""

    seen: list[bytes] = attrs.field(factory=list)


# Malformed heads the HTTP/1.1 channel itself must refuse.
raw_targets = st.one_of(
    st.binary(min_size=1, max_size=40).map(lambda b: b"/" + b.replace(b" ", b"")
                                           .replace(b"\r", b"").replace(b"\n", b"")),
    st.sampled_from([b"/caf\xc3\xa9", b"/\xff", b"/a\tb", b"/a\x00b", b"/\x7f", b"/a\x0bb"]),
)
raw_lines = st.one_of(
    st.sampled_from([
        b"GET /a HTTP/1.1", b"GET /a HTTP/2.0", b"GET /a FOO", b"GET /a", b"GET", b"",
        b"GET  /a HTTP/1.1", b"GET /a HTTP/1.1 x", b"G\xffT /a HTTP/1.1",
        b"GET /" + b"a" * 20_000 + b" HTTP/1.1",
    ]),
    raw_targets.map(lambda t: b"GET " + t + b" HTTP/1.1"),
)
raw_fields = st.lists(st.one_of(
    st.sampled_from([b"X y: 1", b": empty", b"NoColon", b"X:\x00", b"X: a\rb", b" folded",
                     b"Content-Length: -1", b"Content-Length: 1, 2", b"Content-Length: x",
                     b"Transfer-Encoding: gzip", b"Transfer-Encoding: chunked, chunked",
                     b"X: " + b"v" * 20_000]),
    st.binary(max_size=30).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
), max_size=3)


def test_malformed_heads_never_hang_or_5xx(relay: Service) -> None:
    bare = Bare()

    @FUZZ
    @given(line=raw_lines, fields=raw_fields)
    def one(line: bytes, fields: list[bytes]) -> None:
        request = b"\r\n".join([line, b"Host: fuzz.test", *fields, b"Connection: close"])
        request += b"\r\n\r\n"
        answer = exchange(relay.port, request, head_only=line.startswith((b"POST", b"PUT")))
        if answer is None:
            bare.seen.append(request[:200])
            return
        assert answer.status < 500, (request[:300], answer.head)
        if answer.status >= 400 and not answer.body.startswith(b"[ERROR] "):
            bare.seen.append(request[:200])
            return
        check_answer(answer, line.split(b" ", 1)[0], request)

    one()
    clean_afterwards(relay)
    assert not bare.seen, (
        f"{len(bare.seen)} refusals without an [ERROR] line (a bare status or a close). "
        f"First: {bare.seen[0]!r}")
