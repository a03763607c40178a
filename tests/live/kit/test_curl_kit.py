"""The curl parties of tests/kit/ops.py, against a canned server and a real hoodypipe."""

from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path

from tests.kit.ops import (
    Spectator,
    get_json,
    needs_curl,
    random_file,
    receive,
    send,
    sha256,
    status_code,
)
from tests.kit.service import Service


@needs_curl
def test_spectator_parses_events_until_done() -> None:
    stream = (b": hello\n\n"
              b"retry: 1000\nid: 1\nevent: state\ndata: {\"state\":\"idle\"}\n\n"
              b"id: 2\nevent: done\ndata: {\"ok\":true}\n\n")

    class Canned(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write(stream)
            self.wfile.flush()
            time.sleep(0.5)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Canned)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        spectator = Spectator(f"http://127.0.0.1:{server.server_port}/x?progress")
        assert spectator.wait_done(10) == {"ok": True}
        spectator.stop()
        assert spectator.events == [("state", {"state": "idle"}),
                                    ("done", {"ok": True})]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@needs_curl
def test_curl_parties_move_a_body(
    service: Service, tmp_path: Path
) -> None:
    body = random_file(tmp_path / "body", 150_000, seed=1)
    receiver = receive(service.url("helper"), tmp_path / "got")
    sender = send(service.url("helper"), body, tmp_path / "status")
    assert sender.wait(20) == 0 and receiver.wait(20) == 0
    assert sha256(tmp_path / "got") == sha256(body)
    assert sender.lines()[-1] == "[INFO] Transfer complete."
    assert status_code(service.url("nope"), tmp_path / "x", "-X", "DELETE") == 405
    health = get_json(f"{service.base}/api/v1/pipe/health")
    assert health["status"] == "ok"
