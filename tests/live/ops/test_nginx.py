"""
Scale-out: the shipped nginx config in front of three hoodypipe processes.

nginx (the Debian package) runs in the foreground with its own prefix in
tmp_path; only the upstream ports, the listen address and the log paths of
etc/nginx/hoodypipe.conf are changed. Every party is a curl process. nginx's
access log says which instance served each request, so the test knows which
pipes lived on the instance it kills.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests.kit.ops import (
    Spectator,
    get_json,
    needs_curl,
    random_file,
    receive,
    send,
    sha256,
)
from tests.kit.service import REPO, Service, free_port, running_service, stop_process
from tests.kit.waiting import wait_for

NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)
SHIPPED = REPO / "etc" / "nginx" / "hoodypipe.conf"
POOL = 8

pytestmark = [needs_curl, pytest.mark.skipif(NGINX is None, reason="needs nginx")]


@attrs.define
class Nginx:
    process: subprocess.Popen[bytes]
    port: int
    prefix: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_lines(self) -> list[str]:
        return (self.prefix / "access.log").read_text().splitlines()

    def upstreams(self, since: int = 0) -> dict[str, set[int]]:
        """Request path (query dropped) -> the instance ports that answered it.

        ``since`` skips the access log's first lines (an earlier phase).
        """
        served: dict[str, set[int]] = {}
        for line in self.log_lines()[since:]:
            match = re.search(r'"[A-Z]+ ([^ ?]+)\S* HTTP/1.1".* upstream=(.*) '
                              r'upstream_status=', line)
            if match:
                last = match.group(2).split(",")[-1].strip()
                port = int(last.rsplit(":", 1)[1]) if ":" in last else 0
                served.setdefault(match.group(1), set()).add(port)
        return served


def render_config(prefix: Path, port: int, instances: list[int]) -> Path:
    site = SHIPPED.read_text()
    servers = re.findall(r"^\s*server 127\.0\.0\.1:\d+ .*;$", site, re.M)
    assert len(servers) == 3, "the shipped upstream lists three instances"
    for line, instance in zip(servers, instances, strict=True):
        site = site.replace(line, re.sub(r":\d+ ", f":{instance} ", line))
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    site = site.replace("listen [::]:80;", "")
    site = site.replace("/var/log/nginx/hoodypipe.access.log",
                        str(prefix / "access.log"))
    (prefix / "hoodypipe.conf").write_text(site)
    temp = "\n".join(f"    {kind}_temp_path {prefix / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    user = "user root;\n" if os.geteuid() == 0 else ""
    main = (
        f"{user}worker_processes 1;\npid {prefix / 'nginx.pid'};\n"
        f"error_log {prefix / 'error.log'} warn;\n"
        "events { worker_connections 2048; }\n"
        f"http {{\n{temp}\n    include {prefix / 'hoodypipe.conf'};\n}}\n"
    )
    (prefix / "nginx.conf").write_text(main)
    return prefix / "nginx.conf"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[Nginx, list[Service]]]:
    assert NGINX is not None
    with ExitStack() as stack:
        services = []
        for i in range(3):
            workdir = tmp_path / f"instance{i}"
            workdir.mkdir()
            services.append(stack.enter_context(running_service(workdir)))
        prefix = tmp_path / "nginx"
        prefix.mkdir()
        port = free_port()
        config = render_config(prefix, port, [s.port for s in services])
        subprocess.run([NGINX, "-t", "-p", str(prefix), "-c", str(config)],
                       check=True, capture_output=True, timeout=30)
        process = subprocess.Popen(
            [NGINX, "-p", str(prefix), "-c", str(config), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        nginx = Nginx(process, port, prefix)
        stack.callback(_stop_nginx, process)
        wait_for(lambda: _answers(f"{nginx.base}/api/v1/pipe/health"), 20,
                 "nginx to answer")
        yield nginx, services


def _stop_nginx(process: subprocess.Popen[bytes]) -> None:
    stop_process(process, signal.SIGQUIT)


def _answers(url: str) -> bool:
    try:
        return bool(get_json(url, timeout=2))
    except OSError:
        return False


@attrs.define
class Outcome:
    name: str
    size: int
    exact: bool
    sender_last: str
    done: dict[str, Any] | None


def pipe(base: str, tmp_path: Path, name: str, size: int, *, slow: bool = False,
         mixed: bool = False, watch: bool = True) -> Outcome:
    """One pipe through the balancer: receiver, spectator, then sender."""
    body = random_file(tmp_path / f"{name}.body", size, seed=zlib.crc32(name.encode()))
    send_url = f"{base}/api/v1/pipe/{name}" if mixed else f"{base}/{name}"
    spectator = Spectator(f"{base}/{name}?progress") if watch else None
    receiver = receive(f"{base}/{name}", tmp_path / f"{name}.got", "-m", "60")
    extra = ("--limit-rate", "100k") if slow else ()
    sender = send(send_url, body, tmp_path / f"{name}.status", "-m", "60", *extra)
    try:
        sender.wait(70)
        receiver.wait(70)
        done = spectator.wait_done(30) if spectator is not None else None
    except AssertionError:
        done = None
    finally:
        for party in (sender, receiver):
            party.stop()
        if spectator is not None:
            spectator.stop()
    got = tmp_path / f"{name}.got"
    lines = sender.lines()
    return Outcome(name, size, got.exists() and sha256(got) == sha256(body),
                   lines[-1] if lines else "", done)


def run_pipes(base: str, tmp_path: Path, names: list[str], **options: Any
              ) -> list[Outcome]:
    sizes = {name: 200_000 + 7919 * i for i, name in enumerate(names)}
    with ThreadPoolExecutor(POOL) as pool:
        futures = [pool.submit(pipe, base, tmp_path, name, sizes[name],
                               mixed=i % 2 == 1, **options)
                   for i, name in enumerate(names)]
        return [f.result() for f in futures]


def assert_all_complete(outcomes: list[Outcome], watched: bool = True) -> None:
    broken = [o.name for o in outcomes if not o.exact
              or o.sender_last != "[INFO] Transfer complete."]
    assert broken == []
    for o in outcomes if watched else ():
        assert o.done is not None, f"{o.name}: spectator saw no done"
        assert (o.done["state"], o.done["ok"], o.done["bytes"]) == (
            "complete", True, o.size), o.name


def instance_of(nginx: Nginx, name: str, since: int = 0) -> int:
    """The one instance that served every request of pipe ``name``."""
    served = nginx.upstreams(since)
    ports = served.get(f"/{name}", set()) | served.get(f"/api/v1/pipe/{name}", set())
    assert len(ports) == 1, f"{name} was split across {ports}"
    return ports.pop()


def test_fifty_pipes_across_three_instances(
    cluster: tuple[Nginx, list[Service]], tmp_path: Path
) -> None:
    nginx, services = cluster
    names = [f"scale-{i:02d}" for i in range(50)]
    outcomes = run_pipes(nginx.base, tmp_path, names)
    assert_all_complete(outcomes)
    homes = {name: instance_of(nginx, name) for name in names}
    assert set(homes.values()) == {s.port for s in services}, "all three get pipes"


def test_losing_an_instance_fails_only_its_own_pipes(
    cluster: tuple[Nginx, list[Service]], tmp_path: Path
) -> None:
    nginx, services = cluster
    first = [f"warm-{i:02d}" for i in range(24)]
    assert_all_complete(run_pipes(nginx.base, tmp_path, first, watch=False),
                        watched=False)
    homes = {name: instance_of(nginx, name) for name in first}
    victim = services[0]
    moved = [name for name, port in homes.items() if port == victim.port]
    assert moved, "some names live on the instance about to go"

    # Slow transfers on every instance, then one instance dies mid-stream.
    slow = [f"slow-{i:02d}" for i in range(12)]
    mark = len(nginx.log_lines())
    with ThreadPoolExecutor(len(slow)) as pool:
        futures = {name: pool.submit(pipe, nginx.base, tmp_path, name, 400_000,
                                     slow=True, watch=False) for name in slow}
        wait_for(lambda: sum(get_json(f"{s.base}/api/v1/pipe/health")["active"]
                             for s in services) == len(slow), 20, "all streaming")
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait(10)
        outcomes = {name: f.result() for name, f in futures.items()}
    on_victim = {n for n in slow if instance_of(nginx, n, mark) == victim.port}
    assert on_victim, "the victim had transfers running"
    for name, outcome in outcomes.items():
        if name in on_victim:
            assert not outcome.exact, f"{name} died with its instance"
        else:
            assert outcome.exact, name
            assert outcome.sender_last == "[INFO] Transfer complete.", name

    # The names that lived on the dead instance move, all parties alike, and
    # new names work: 50 pipes with spectators after the loss.
    after = moved + [f"after-{i:02d}" for i in range(50 - len(moved))]
    (tmp_path / "after").mkdir()
    mark = len(nginx.log_lines())
    assert_all_complete(run_pipes(nginx.base, tmp_path / "after", after))
    assert {instance_of(nginx, name, mark) for name in after} == {
        s.port for s in services[1:]}
