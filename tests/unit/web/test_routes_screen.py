"""In memory, whole HTTP exchanges: what is refused on every path before the
method is looked at (service workers, targets that are no path, repeated
parameters), absolute-form targets, and the sandbox policy of receivers."""

from __future__ import annotations

import pytest

from tests.kit.memory_http import Server, error_body

SERVICE_WORKER = b"[ERROR] Service workers are not allowed on this server.\n"
SANDBOX = b"sandbox"


@pytest.fixture
def server() -> Server:
    return Server()


@pytest.mark.parametrize(("method", "path", "body"), [
    (b"GET", b"/victim", b""),
    (b"GET", b"/worker.js?wait=1", b""),
    (b"GET", b"/api/v1/pipe/worker.js", b""),
    (b"POST", b"/worker.js", b"self.onfetch = () => {}"),
    (b"PUT", b"/worker.js", b"x"),
    (b"GET", b"/victim?progress", b""),
    (b"GET", b"/victim?status", b""),
    (b"HEAD", b"/victim?status", b""),
    (b"OPTIONS", b"/victim", b""),
    (b"DELETE", b"/victim", b""),
    (b"PATCH", b"/victim", b""),
    (b"GET", b"/", b""),
    (b"GET", b"/help", b""),
    (b"GET", b"/robots.txt", b""),
    (b"GET", b"/api/v1/pipe/health", b""),
    (b"POST", b"/help", b"x"),
])
@pytest.mark.parametrize("value", [b"script", b"SCRIPT", b" script ", b"anything"])
def test_service_worker_requests_are_400_before_the_method(
    server: Server, method: bytes, path: bytes, body: bytes, value: bytes,
) -> None:
    conn = server.connect().request(method, path, b"Service-Worker: " + value, body=body)
    (response,) = conn.responses(head=(0,) if method == b"HEAD" else ())
    assert response.status == 400
    assert response.header(b"allow") is None
    if method != b"HEAD":
        assert error_body(response) == SERVICE_WORKER
    assert server.registry.waiting_count() == 0


def test_a_worker_script_with_its_sender_waiting_is_never_served(server: Server) -> None:
    sender = server.connect().request(b"POST", b"/worker.js",
                                      b"Content-Type: text/javascript", body=b"evil()")
    assert server.registry.waiting_count() == 1
    fetch = server.get(b"/worker.js", b"Service-Worker: script")
    assert fetch.status == 400
    assert error_body(fetch) == SERVICE_WORKER
    assert server.registry.waiting_count() == 1
    sender.drop()


@pytest.mark.parametrize(("method", "target", "line"), [
    (b"GET", b"abc", b"The request target must be a path starting with '/'."),
    (b"GET", b"abc?wait=1", b"The request target must be a path starting with '/'."),
    (b"POST", b"abc", b"The request target must be a path starting with '/'."),
    (b"GET", b"xrobots.txt", b"The request target must be a path starting with '/'."),
    (b"GET", b"xapi/v1/pipe/health",
     b"The request target must be a path starting with '/'."),
    (b"GET", b"*", b"The request target '*' is only for OPTIONS."),
    (b"GET", b"ftp://x/a", b"An absolute request target must be an http or https URL "
     b"with a host."),
    (b"GET", b"http://user@x/a", b"An absolute request target must be an http or https "
     b"URL with a host."),
])
def test_targets_that_are_no_path_are_400(
    server: Server, method: bytes, target: bytes, line: bytes,
) -> None:
    body = b"x" if method == b"POST" else b""
    response = server.connect().request(method, target, body=body).response()
    assert response.status == 400
    assert error_body(response) == b"[ERROR] " + line + b"\n"
    assert server.registry.waiting_count() == 0
    assert server.registry.status("bc").state == "idle"


def test_options_asterisk_is_answered(server: Server) -> None:
    response = server.connect().request(b"OPTIONS", b"*").response()
    assert response.status == 204
    assert response.header(b"access-control-allow-methods") == b"GET, HEAD, POST, PUT, OPTIONS"


def test_an_absolute_form_target_is_its_path(server: Server) -> None:
    receiver = server.connect().request(b"GET", b"http://pipes.test/abs?wait=5")
    assert server.registry.status("abs").state == "waiting"
    sender = server.connect().request(b"PUT", b"HTTP://other.test:81/api/v1/pipe/abs",
                                      body=b"hello")
    assert receiver.response().body == b"hello"
    assert sender.response().status == 200
    assert server.registry.waiting_count() == 0


def test_an_absolute_form_authority_replaces_the_host(server: Server) -> None:
    conn = server.connect().request(b"GET", b"http://relay.example:8080/help")
    text = conn.response().body.decode()
    assert "curl -T myfile http://relay.example:8080/mypath" in text
    assert "pipes.test" not in text


@pytest.mark.parametrize("query", [
    b"n=1&n=2", b"n=2&n=2", b"wait=5&wait=5", b"size=1&size=2", b"progress&progress",
    b"status&status=1", b"download&download", b"video=1&video=0", b"sha256&sha256",
    b"filename=a&filename=b", b"n=1&wait=5&n=1",
])
@pytest.mark.parametrize("method", [b"GET", b"POST"])
def test_a_repeated_parameter_is_400(server: Server, query: bytes, method: bytes) -> None:
    key = query.split(b"&")[-1].partition(b"=")[0]
    if b"n=1&wait" in query:
        key = b"n"
    body = b"x" if method == b"POST" else b""
    response = server.connect().request(method, b"/rep?" + query, body=body).response()
    assert response.status == 400
    assert error_body(response) == b"[ERROR] Parameter %s given more than once.\n" % key
    assert server.registry.waiting_count() == 0


def test_other_repeated_parameters_are_ignored(server: Server) -> None:
    server.connect().request(b"GET", b"/cache?_=1&_=2&wait=5")
    assert server.registry.waiting_count() == 1


def test_receiver_responses_are_sandboxed(server: Server) -> None:
    receiver = server.connect().request(b"GET", b"/page")
    server.connect().request(b"PUT", b"/page", b"Content-Type: text/html x",
                             body=b"<script>document.title='owned'</script>")
    response = receiver.response()
    assert response.status == 200
    assert response.header(b"content-security-policy") == SANDBOX
    assert response.header(b"content-type") == b"application/octet-stream"
    assert response.header(b"x-content-type-options") == b"nosniff"


def test_refusals_are_sandboxed(server: Server) -> None:
    for response in (server.get(b"/a%2Fb"), server.get(b"/x?n=0"),
                     server.connect().request(b"DELETE", b"/x").response()):
        assert response.status >= 400
        assert response.header(b"content-security-policy") == SANDBOX


@pytest.mark.parametrize("path", [b"/", b"/x?progress"])
def test_our_own_pages_keep_their_nonce_policy(server: Server, path: bytes) -> None:
    response = server.get(path, b"Accept: text/html")
    assert response.status == 200
    policy = response.header(b"content-security-policy") or b""
    assert b"script-src 'nonce-" in policy
    assert b"sandbox" not in policy


# -- what Klein cannot route is screened before it -----------------------------------------


@pytest.mark.parametrize(("head", "line"), [
    (b"GET /\x80 HTTP/1.1\r\nHost: a\r\n\r\n",
     b"The request target must be percent-encoded ASCII."),
    (b"POST /t\x8c\x8e HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx",
     b"The request target must be percent-encoded ASCII."),
    (b"GET /a HTTP/1.1\r\nHost: \xff\r\n\r\n", b"The Host header is not a host name and port."),
    (b"GET /a HTTP/1.1\r\nHost: a b\r\n\r\n", b"The Host header is not a host name and port."),
    (b"GET /a HTTP/1.1\r\n\r\n", b"An HTTP/1.1 request needs a Host header."),
    (b"GET /a HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", b"More than one Host header."),
    (b"PUT /a HTTP/1.1\r\nContent-Length: 1\r\n\r\nx", b"An HTTP/1.1 request needs a Host header."),
])
def test_heads_klein_cannot_route_are_refused_with_an_error_line(
    server: Server, head: bytes, line: bytes,
) -> None:
    (response,) = server.connect().send(head).responses()
    assert response.status == 400
    assert error_body(response) == b"[ERROR] " + line + b"\n"
    assert server.registry.waiting_count() == 0


def test_an_http_10_request_needs_no_host(server: Server) -> None:
    conn = server.connect().send(b"GET /robots.txt HTTP/1.0\r\n\r\n")
    assert conn.responses()[0].status == 200


def test_an_absolute_form_target_needs_no_valid_host(server: Server) -> None:
    conn = server.connect().send(b"GET http://relay.test/robots.txt HTTP/1.1\r\n\r\n")
    assert conn.responses()[0].status == 200
    conn = server.connect().send(
        b"GET http://relay.test/robots.txt HTTP/1.1\r\nHost: \xff\r\n\r\n")
    assert conn.responses()[0].status == 200
