"""Benchmark hoodypipe against piping-server 1.12.9 on loopback, with curl clients.

What is measured, per server (all URLs on 127.0.0.1, one fresh pipe name per
transfer, both servers started once and kept for the whole run):

chunked
    sender ``cat PAYLOAD | curl -sS -T - URL`` (curl's stdin is a pipe, so it
    sends ``Transfer-Encoding: chunked``), receiver ``curl -sS URL -o /dev/null``.
sized
    sender ``curl -sS -T PAYLOAD URL`` (so the body has a Content-Length),
    same receiver.
rss
    a fast chunked sender of min(300 MB, --size) bytes
    (``head -c N PAYLOAD | curl -T -``) and a receiver held to
    ``curl --limit-rate 20M``; the server's VmRSS is sampled every 100 ms and
    the peak minus the value just before the transfer is reported.
spectators (hoodypipe only)
    the chunked transfer with 0 and with N ``curl -sN URL?progress``
    spectators, started (and seen connected) before the sender and reading to
    a file; reported as the throughput ratio with/without.
latency
    no curl: socket clients in this process. A receiver connects and sends
    ``GET /NAME HTTP/1.1``; after --latency-settle-ms the clock starts, a
    sender connects and sends ``PUT /NAME`` with ``Content-Length: 1024`` and
    the body in one ``sendall``, and the clock stops when the receiver has
    read the whole response body. The sender's reply must then say that the
    receiver was already there (hoodypipe: "receiver(s) already connected",
    piping-server: "receiver(s) has/have been connected"), otherwise the
    sample is thrown away and taken again. --latency-samples per server and
    round, each on a new pipe name over new connections; median and p99.
paced50, paced200
    sender ``cat PAYLOAD | curl -sS -T - --limit-rate 50M URL`` (500 MB) or
    ``--limit-rate 200M`` (1 GB), receiver ``curl -sS URL -o /dev/null``;
    server CPU as a percentage of one core over the transfer's wall time,
    and CPU-s/GB.

PAYLOAD is --size bytes of random data written once per run into a temporary
directory, so it is served from the page cache. Throughput is
MB/s = bytes / 10^6 / wall seconds, wall time running from just before the
first client process is started until the last one has exited. Server CPU is
utime + stime of the server process alone (all its threads, not children),
read from /proc/PID/stat before and after, per 10^9 bytes relayed. Every
measurement is repeated --rounds times with the servers alternating
(A B A B ...) so machine noise falls on both; the table shows medians.
An unmeasured warm-up round first relays the payload once per server and
body kind into ``sha256sum`` and checks the digest.

The servers run as an operator would run them: no MALLOC_* variables are set
by this script (inherited ones are passed through and printed in the header).
``--profile`` then records one chunked and one sized hoodypipe transfer with
``py-spy record`` and prints the functions with the most samples.

``--checkout DIR`` runs the hoodypipe of another checkout (worktree) with
this script.

``--pin`` puts each server on CPU 0 and everything else (this script, the
curls, the latency clients) on CPU 1. Unpinned, a bulk round's cost depends
on where the scheduler happens to put the receiving curl: sharing the
server's CPU, its copies out of the server are cache-hot, and hoodypipe's
CPU-s/GB was 0.40 against 0.70 with the receiver on the other CPU, for the
same number of system calls. Pinned, every round of both servers has the
second, dearer layout, the one a server meets when its clients are on other
machines.

Every process started here is stopped and the temporary directory removed on
exit, including on Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import hashlib
import json
import math
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"
PIPING_VERSION = "1.12.9"
PIPING_PACKAGE = BENCH_DIR / "node_modules" / "piping-server"
PIPING_ENTRY = PIPING_PACKAGE / "dist" / "src" / "index.js"

ALL_KINDS = ("chunked", "sized", "rss", "spectators", "latency", "paced50", "paced200")
BULK_KINDS = ("chunked", "sized", "spectators")  # these relay --size bytes
PACED_KINDS = {"paced50": "50M", "paced200": "200M"}  # curl --limit-rate (MiB/s)
PACED_DEFAULT_SIZES = {"paced50": "500MB", "paced200": "1GB"}
ALL_SERVERS = ("hoodypipe", "piping-server")
RSS_BYTES = 300_000_000
RSS_LIMIT_RATE = "20M"
RSS_SAMPLE_S = 0.1
READY_TIMEOUT_S = 30.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_CHUNK = 4 << 20

# Targets (issue "Faster where users feel it"), all hoodypipe / piping-server.
TARGET_CPU_RATIO = 0.6  # CPU-s/GB, chunked and sized
TARGET_LATENCY_RATIO = 1.0  # median 1 KiB latency
TARGET_PACED_RATIO = 0.7  # CPU % of a core while relaying a paced sender
TARGET_RSS_MB = 16.0
TARGET_SPECTATOR_RATIO = 0.98

LATENCY_BYTES = 1024
LATENCY_TIMEOUT_S = 10.0
LATENCY_MAX_RETRIES = 20  # samples thrown away (receiver late, error) per block
# What the sender's reply says when the receiver was registered before it.
RECEIVER_WAS_THERE = {
    "hoodypipe": b"receiver(s) already connected",
    "piping-server": b"receiver(s) has/have been connected",
}

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?)?B?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1,
    "k": 10**3,
    "m": 10**6,
    "g": 10**9,
    "t": 10**12,
    "ki": 2**10,
    "mi": 2**20,
    "gi": 2**30,
    "ti": 2**40,
}


class BenchError(Exception):
    """A transfer or a server did not behave; the message says how."""


def run_script(main: Callable[[], int]) -> NoReturn:
    """A companion script's ``__main__``: exit with ``main()``'s status, or
    with 2 and one line on stderr when a transfer or a server misbehaved."""
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def parse_size(text: str) -> int:
    """Parse ``2GiB``, ``512MiB``, ``300MB``, ``1G`` (SI) or plain bytes."""
    match = _SIZE_RE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 2GiB, 512MiB)")
    number, unit = match.group(1), (match.group(2) or "").lower()
    size = int(float(number) * _SIZE_UNITS[unit])
    if size < 1:
        raise argparse.ArgumentTypeError("size must be at least 1 byte")
    return size


def parse_choices(allowed: Sequence[str]) -> Any:
    """An argparse type for a comma-separated subset of ``allowed``."""

    def parse(text: str) -> list[str]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        unknown = [item for item in items if item not in allowed]
        if unknown or not items:
            raise argparse.ArgumentTypeError(f"choose from {','.join(allowed)}; got {text!r}")
        return [item for item in allowed if item in items]

    return parse


# --------------------------------------------------------------------------
# processes


class Processes:
    """Every child process this run starts, so that all of them can be stopped."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        proc: subprocess.Popen[bytes] = subprocess.Popen(list(argv), **kwargs)
        self._procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``grace_s``; forget the process."""
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc in self._procs:
            self._procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self._procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in list(self._procs):
            self.stop(proc, grace_s=3.0)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def read_cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def read_rss_bytes(pid: int) -> int:
    """VmRSS of one process, in bytes (0 if it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def binary_size(size: int) -> str:
    """2147483648 -> ``2.00 GiB``; 268435456 -> ``256.0 MiB``."""
    if size >= 2**30:
        return f"{size / 2**30:.2f} GiB"
    return f"{size / 2**20:.1f} MiB"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_until_ready(
    argv: list[str], env: dict[str, str], stack: Any, ready: Callable[[], bool],
    what: str, timeout: float = 30.0,
) -> subprocess.Popen[bytes]:
    """Start a server outside ``Processes``, stopped (SIGTERM, then SIGKILL)
    when ``stack`` (an ``ExitStack``) closes; returned once ``ready()``."""
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    stack.callback(stop)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{argv[0]} exited with {proc.returncode}")
        if ready():
            return proc
        time.sleep(0.1)
    raise BenchError(f"not ready after {timeout:g} s: {what}")


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def command_version(argv: Sequence[str]) -> str:
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


# --------------------------------------------------------------------------
# servers


@dataclass
class Server:
    """One running server under test."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    rss_start: int = 0
    rss_peak: int = 0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def url(self, pipe: str, query: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{pipe}{query}"

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise BenchError(
                f"{self.name} exited with {self.proc.returncode}; log tail:\n" + tail(self.log)
            )


def ensure_piping_server() -> None:
    """Install the pinned piping-server into bench/node_modules if missing."""
    if not PIPING_ENTRY.exists():
        print(f"installing piping-server {PIPING_VERSION} (npm install)", flush=True)
        subprocess.run(
            ["npm", "install", "--prefix", str(BENCH_DIR), "--no-audit", "--no-fund"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    version = json.loads((PIPING_PACKAGE / "package.json").read_text())["version"]
    if version != PIPING_VERSION:
        raise BenchError(
            f"bench/node_modules has piping-server {version}, want {PIPING_VERSION}; "
            "remove bench/node_modules and rerun"
        )


#: ``--pin``: the CPU each server runs on, and the one for everything else.
SERVER_CPU, CLIENT_CPU = 0, 1


def server_command(
    name: str, port: int, twistd: Path, pin: bool = False
) -> tuple[list[str], str]:
    """The argv that starts server ``name`` and the path that answers when ready."""
    argv, ready_path = _server_command(name, port, twistd)
    return (on_server_cpu(argv) if pin else argv), ready_path


def on_server_cpu(argv: Sequence[str]) -> list[str]:
    """``argv`` run on ``SERVER_CPU`` only (``--pin``)."""
    return ["taskset", "--cpu-list", str(SERVER_CPU), *argv]


def _server_command(name: str, port: int, twistd: Path) -> tuple[list[str], str]:
    if name == "hoodypipe":
        listen = f"tcp:{port}:interface=127.0.0.1"
        argv = [
            str(twistd),
            "--nodaemon",
            "--pidfile=",
            "hoodypipe",
            "--listen",
            listen,
        ]
        return argv, "/api/v1/pipe/health"
    argv = ["node", str(PIPING_ENTRY), "--host", "127.0.0.1", "--http-port", str(port)]
    return argv, "/help"


def server_env(checkout: Path) -> dict[str, str]:
    """Our environment plus the checkout on PYTHONPATH (for the twistd dropin)."""
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(checkout) + (os.pathsep + path if path else "")
    return env


def start_server(bench: Bench, name: str) -> Server:
    """Start one server on a free loopback port and wait until it answers."""
    port = free_port()
    argv, ready_path = server_command(name, port, bench.twistd, bench.pin)
    log = bench.scratch(f"{name}.log")
    with log.open("wb") as log_file:
        proc = bench.processes.start(
            argv,
            cwd=bench.workdir,
            env=server_env(bench.checkout),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = Server(name=name, proc=proc, port=port, log=log)
    wait_ready(server, f"http://127.0.0.1:{port}{ready_path}")
    server.rss_start = server.rss_peak = read_rss_bytes(server.pid)
    return server


def wait_ready(server: Server, url: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last_error = ""
    while time.monotonic() < deadline:
        server.check_alive()
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                if response.status == 200:
                    return
                last_error = f"HTTP {response.status}"
        except (OSError, urllib.error.URLError) as e:
            last_error = str(e)
        time.sleep(0.1)
    raise BenchError(
        f"{server.name} not ready at {url} after {READY_TIMEOUT_S:.0f} s "
        f"({last_error}); log tail:\n{tail(server.log)}"
    )


# --------------------------------------------------------------------------
# one transfer


@dataclass
class Measurement:
    """The outcome of one relayed transfer."""

    kind: str
    server: str
    round: int
    bytes: int
    spectators: int = 0
    ok: bool = True
    error: str | None = None
    wall_s: float = 0.0
    mb_per_s: float = 0.0
    cpu_s: float = 0.0
    cpu_s_per_gb: float = 0.0
    cpu_percent: float = 0.0  # server CPU-s / wall s, in % of one core
    rss_before: int = 0
    rss_peak: int = 0
    rss_growth: int = 0
    spectators_done: int | None = None
    sha256_ok: bool | None = None


@dataclass
class Transfer:
    """What one transfer should do."""

    kind: str
    body: str  # "chunked" or "sized"
    nbytes: int
    round: int
    spectators: int = 0
    limit_rate: str | None = None
    verify: bool = False
    sender_limit_rate: str | None = None


@dataclass
class Payload:
    """Random bytes in a file; ``sha256`` of the prefixes that are relayed."""

    path: Path
    size: int
    sha256: dict[int, str]
    sized_files: dict[int, Path] = field(default_factory=dict)

    def sized_file(self, nbytes: int) -> Path:
        """A file of exactly ``nbytes`` (for ``curl -T FILE``): the payload or
        a copy of its first ``nbytes``, made once."""
        if nbytes == self.size:
            return self.path
        if nbytes not in self.sized_files:
            path = self.path.with_name(f"payload-{nbytes}.bin")
            with self.path.open("rb") as src, path.open("wb") as dst:
                left = nbytes
                while left:
                    block = src.read(min(PAGE_CHUNK, left))
                    dst.write(block)
                    left -= len(block)
            self.sized_files[nbytes] = path
        return self.sized_files[nbytes]


@dataclass
class LatencyBlock:
    """One server's latency samples in one round (milliseconds)."""

    server: str
    round: int
    samples_ms: list[float] = field(default_factory=list)
    retries: int = 0
    errors: list[str] = field(default_factory=list)
    ok: bool = True

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p99_ms(self) -> float:
        return percentile(self.samples_ms, 0.99)


@dataclass
class Bench:
    """Shared state of one benchmark run."""

    processes: Processes
    workdir: Path
    payload: Payload | None
    twistd: Path
    checkout: Path
    measurements: list[Measurement] = field(default_factory=list)
    latency: list[LatencyBlock] = field(default_factory=list)
    latency_body: bytes = field(default_factory=lambda: os.urandom(LATENCY_BYTES))
    counter: int = 0
    sha256: bool = False  # --sha256: hoodypipe senders ask for a receipt
    pin: bool = False  # --pin: servers on SERVER_CPU, the rest on CLIENT_CPU

    def scratch(self, stem: str) -> Path:
        self.counter += 1
        return self.workdir / f"{self.counter:04d}-{stem}"

    @property
    def data(self) -> Payload:
        if self.payload is None:
            raise BenchError("no payload was made for this run")
        return self.payload


def make_payload(workdir: Path, size: int, marks: Sequence[int] = ()) -> Payload:
    """Write ``size`` random bytes to a file; hash it and its prefixes of ``marks`` bytes."""
    path = workdir / "payload.bin"
    digest = hashlib.sha256()
    digests: dict[int, str] = {}
    stops = sorted({mark for mark in marks if 0 < mark < size})
    with path.open("wb") as out:
        written = 0
        while written < size:
            end = min(written + PAGE_CHUNK, size, *(m for m in stops if m > written))
            block = os.urandom(end - written)
            digest.update(block)
            out.write(block)
            written = end
            if written in stops:
                digests[written] = digest.copy().hexdigest()
    digests[size] = digest.hexdigest()
    return Payload(path=path, size=size, sha256=digests)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1), linear between the two nearest ranks."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    low = math.floor(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


class ExitClock:
    """Waits for processes in threads, stamping the moment each one exits."""

    def __init__(self, procs: Sequence[subprocess.Popen[bytes]]) -> None:
        self.exited_at: dict[int, float] = {}
        self._threads = [
            threading.Thread(target=self._wait, args=(proc,), daemon=True) for proc in procs
        ]
        for thread in self._threads:
            thread.start()

    def _wait(self, proc: subprocess.Popen[bytes]) -> None:
        proc.wait()
        self.exited_at[proc.pid] = time.monotonic()

    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def last_exit(self) -> float:
        return max(self.exited_at.values())


def curl_sender(
    bench: Bench, transfer: Transfer, url: str
) -> tuple[list[subprocess.Popen[bytes]], Path, Path]:
    """Start the sender (``cat | curl -T -`` or ``curl -T FILE``).

    Returns its processes, the file with the server's reply and the file with
    curl's stderr (ending in the HTTP status).
    """
    reply, errors = bench.scratch("sender.out"), bench.scratch("sender.err")
    curl = ["curl", "-sS", "-w", "%{stderr}%{http_code}\n", "-o", str(reply)]
    if transfer.sender_limit_rate:
        curl += ["--limit-rate", transfer.sender_limit_rate]
    data = bench.data
    with errors.open("wb") as err:
        if transfer.body == "sized":
            sized = str(data.sized_file(transfer.nbytes))
            proc = bench.processes.start(
                [*curl, "-T", sized, url], stdin=subprocess.DEVNULL, stderr=err
            )
            return [proc], reply, errors
        payload = str(data.path)
        source = ["cat", payload]
        if transfer.nbytes != data.size:
            source = ["head", "-c", str(transfer.nbytes), payload]
        feeder = bench.processes.start(source, stdout=subprocess.PIPE)
        assert feeder.stdout is not None
        proc = bench.processes.start([*curl, "-T", "-", url], stdin=feeder.stdout, stderr=err)
        feeder.stdout.close()
        return [feeder, proc], reply, errors


def curl_receiver(
    bench: Bench, transfer: Transfer, url: str
) -> tuple[list[subprocess.Popen[bytes]], Path, Path | None]:
    """Start the receiver; with ``verify`` its body goes into ``sha256sum``.

    Returns its processes, the file with curl's stderr (ending in
    ``STATUS BYTES``) and the file holding sha256sum's output, if any.
    """
    errors = bench.scratch("receiver.err")
    curl = ["curl", "-sS", "-w", "%{stderr}%{http_code} %{size_download}\n"]
    if transfer.limit_rate:
        curl += ["--limit-rate", transfer.limit_rate]
    with errors.open("wb") as err:
        if not transfer.verify:
            proc = bench.processes.start(
                [*curl, "-o", "/dev/null", url], stdin=subprocess.DEVNULL, stderr=err
            )
            return [proc], errors, None
        digest = bench.scratch("receiver.sha256")
        proc = bench.processes.start(
            [*curl, url], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err
        )
        assert proc.stdout is not None
        with digest.open("wb") as digest_file:
            hasher = bench.processes.start(["sha256sum"], stdin=proc.stdout, stdout=digest_file)
        proc.stdout.close()
        return [proc, hasher], errors, digest


def start_spectators(
    bench: Bench, server: Server, pipe: str, count: int
) -> list[tuple[subprocess.Popen[bytes], Path]]:
    """Start ``count`` SSE spectators and wait until each has its first event."""
    spectators = []
    for _ in range(count):
        out = bench.scratch("spectator.sse")
        proc = bench.processes.start(
            ["curl", "-sN", "-o", str(out), server.url(pipe, "?progress")],
            stdin=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        spectators.append((proc, out))
    try:
        wait_spectators_connected(spectators)
    except BenchError:
        for proc, _ in spectators:
            bench.processes.stop(proc)
        raise
    return spectators


def wait_spectators_connected(
    spectators: list[tuple[subprocess.Popen[bytes], Path]],
) -> None:
    """Wait until every spectator has bytes in its file and none has exited."""

    def received(out: Path) -> int:
        return out.stat().st_size if out.exists() else 0

    deadline = time.monotonic() + 15.0
    while True:
        for index, (proc, out) in enumerate(spectators):
            if proc.poll() is not None:
                reply = out.read_bytes()[:200] if out.exists() else b""
                raise BenchError(
                    f"spectator {index + 1}/{len(spectators)} ended before the "
                    f"transfer (curl exit {proc.returncode}): {reply!r}"
                )
        waiting = sum(1 for _, out in spectators if not received(out))
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"{waiting}/{len(spectators)} spectators got no first event in 15 s")
        time.sleep(0.05)


def finish_spectators(bench: Bench, spectators: list[tuple[subprocess.Popen[bytes], Path]]) -> int:
    """Give spectators up to 5 s to see ``done``, stop them, count those that did."""

    def saw_done(out: Path) -> bool:
        return b"event: done" in out.read_bytes()

    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and not all(saw_done(o) for _, o in spectators):
        time.sleep(0.1)
    done = sum(saw_done(out) for _, out in spectators)
    for proc, _ in spectators:
        if proc.poll() is None:
            proc.terminate()
    for proc, _ in spectators:
        bench.processes.stop(proc)
    return done


def last_line(path: Path) -> str:
    lines = path.read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else ""


def check_clients(
    procs: Sequence[subprocess.Popen[bytes]],
    sender_reply: Path,
    sender_err: Path,
    receiver_err: Path,
    transfer: Transfer,
) -> None:
    """Raise BenchError unless both curls exited 0 with 200 and all bytes."""
    problems = [f"{p.args!r} exited {p.returncode}" for p in procs if p.returncode != 0]
    sender_status = last_line(sender_err)
    if sender_status != "200":
        problems.append(f"sender: {sender_err.read_text(errors='replace').strip()}")
    reply = sender_reply.read_text(errors="replace") if sender_reply.exists() else ""
    if "[ERROR]" in reply:
        problems.append(f"sender reply: {reply.strip()[-300:]}")
    expected = f"200 {transfer.nbytes}"
    if last_line(receiver_err) != expected:
        received = receiver_err.read_text(errors="replace").strip()
        problems.append(f"receiver: {received!r}, want {expected!r}")
    if problems:
        raise BenchError("; ".join(problems))


def check_receipt(sender_reply: Path, expected: str) -> None:
    """With --sha256: the sender's ``[INFO] sha256:`` line is the payload's digest."""
    lines = sender_reply.read_text(errors="replace").splitlines()
    got = [line.split()[-1] for line in lines if line.startswith("[INFO] sha256: ")]
    if got != [expected]:
        raise BenchError(f"receipt {got!r}, want the payload's sha256 {expected}")


def relay(bench: Bench, server: Server, transfer: Transfer) -> Measurement:
    """Relay one body through ``server`` and measure it."""
    result = Measurement(
        kind=transfer.kind,
        server=server.name,
        round=transfer.round,
        bytes=transfer.nbytes,
        spectators=transfer.spectators,
    )
    server.check_alive()
    pipe = f"bench-{transfer.kind}-{uuid.uuid4().hex[:12]}"
    url = server.url(pipe)
    receipt = bench.sha256 and server.name == "hoodypipe"
    sender_url = server.url(pipe, "?sha256") if receipt else url
    spectators = start_spectators(bench, server, pipe, transfer.spectators)
    clients: list[subprocess.Popen[bytes]] = []
    try:
        result.rss_before = result.rss_peak = read_rss_bytes(server.pid)
        cpu_before = read_cpu_seconds(server.pid)
        started = time.monotonic()
        receiver, receiver_err, digest = curl_receiver(bench, transfer, url)
        sender, sender_reply, sender_err = curl_sender(bench, transfer, sender_url)
        clients = receiver + sender
        clock = ExitClock(clients)
        deadline = started + 30.0 + transfer.nbytes / 10e6
        while clock.running():
            if time.monotonic() > deadline:
                raise BenchError(f"transfer still running after {deadline - started:.0f} s")
            result.rss_peak = max(result.rss_peak, read_rss_bytes(server.pid))
            time.sleep(RSS_SAMPLE_S)
        result.wall_s = clock.last_exit() - started
        result.cpu_s = read_cpu_seconds(server.pid) - cpu_before
        result.rss_peak = max(result.rss_peak, read_rss_bytes(server.pid))
        server.rss_peak = max(server.rss_peak, result.rss_peak)
        check_clients(clients, sender_reply, sender_err, receiver_err, transfer)
        if receipt:
            check_receipt(sender_reply, bench.data.sha256[transfer.nbytes])
        if digest is not None:
            result.sha256_ok = digest.read_text().split()[0] == bench.data.sha256[transfer.nbytes]
            if not result.sha256_ok:
                raise BenchError("received bytes differ from the payload (sha256)")
    finally:
        for proc in clients:
            bench.processes.stop(proc)
        if spectators:
            result.spectators_done = finish_spectators(bench, spectators)
    result.mb_per_s = transfer.nbytes / 1e6 / result.wall_s
    result.cpu_s_per_gb = result.cpu_s / (transfer.nbytes / 1e9)
    result.cpu_percent = 100.0 * result.cpu_s / result.wall_s
    result.rss_growth = result.rss_peak - result.rss_before
    return result


def measure(bench: Bench, server: Server, transfer: Transfer) -> Measurement:
    """Run ``relay``, then record and print the outcome (a failure is recorded)."""
    try:
        result = relay(bench, server, transfer)
    except BenchError as e:
        result = Measurement(
            kind=transfer.kind,
            server=server.name,
            round=transfer.round,
            bytes=transfer.nbytes,
            spectators=transfer.spectators,
            ok=False,
            error=str(e),
        )
    bench.measurements.append(result)
    print(progress_line(result), flush=True)
    return result


def progress_line(m: Measurement) -> str:
    label = f"  r{m.round} {m.kind:<15} {m.server:<13}"
    if m.kind == "spectators":
        label += f" n={m.spectators:<3}"
    if not m.ok:
        return f"{label} FAILED: {m.error}"
    text = f"{label} {m.mb_per_s:8.1f} MB/s {m.cpu_s_per_gb:6.3f} CPU-s/GB"
    if m.kind in PACED_KINDS:
        text += f" {m.cpu_percent:5.1f}% of a core"
    text += f"  rss +{m.rss_growth / 1e6:.1f} MB"
    if m.sha256_ok:
        text += "  sha256 ok"
    if m.spectators_done is not None:
        text += f"  {m.spectators_done}/{m.spectators} spectators saw done"
    return text


# --------------------------------------------------------------------------
# latency: a 1 KiB body to a waiting receiver, raw sockets


def _recv(sock: socket.socket) -> bytes:
    chunk = sock.recv(65536)
    if not chunk:
        raise BenchError("connection closed before the response was complete")
    return chunk


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """Read one HTTP/1.1 response from a blocking socket: (status, body).

    The body is delimited by Content-Length, by chunked encoding (trailers
    skipped) or, without either, by the server closing the connection.
    """
    buf = bytearray()
    end = -1
    while end < 0:
        buf += _recv(sock)
        end = buf.find(b"\r\n\r\n")
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    del buf[: end + 4]
    if "content-length" in headers:
        length = int(headers["content-length"])
        while len(buf) < length:
            buf += _recv(sock)
        return status, bytes(buf[:length])
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return status, read_chunked(sock, buf)
    while chunk := sock.recv(65536):
        buf += chunk
    return status, bytes(buf)


def read_chunked(sock: socket.socket, buf: bytearray) -> bytes:
    """Decode a chunked body, ``buf`` holding what was already received."""
    body = bytearray()
    pos = 0

    def line_end() -> int:
        while (found := buf.find(b"\r\n", pos)) < 0:
            buf.extend(_recv(sock))
        return found

    while True:
        end = line_end()
        size = int(bytes(buf[pos:end]).split(b";")[0], 16)
        pos = end + 2
        if size == 0:
            while (end := line_end()) != pos:  # trailer lines, then an empty one
                pos = end + 2
            return bytes(body)
        while len(buf) < pos + size + 2:
            buf.extend(_recv(sock))
        body += buf[pos : pos + size]
        pos += size + 2


def latency_sample(server: Server, body: bytes, settle_s: float) -> float | None:
    """One timed transfer of ``body``, in ms; None if the receiver was not yet
    registered when the sender came (the sender's reply says which).

    The clock runs from just before the sender's ``connect`` until the
    receiver has read the whole response body.
    """
    name = f"bench-latency-{uuid.uuid4().hex[:12]}"
    address = ("127.0.0.1", server.port)
    host = f"Host: 127.0.0.1:{server.port}\r\n"
    get = f"GET /{name} HTTP/1.1\r\n{host}\r\n".encode()
    put = f"PUT /{name} HTTP/1.1\r\n{host}Content-Length: {len(body)}\r\n\r\n".encode() + body
    with socket.create_connection(address, timeout=LATENCY_TIMEOUT_S) as receiver:
        receiver.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        receiver.sendall(get)
        time.sleep(settle_s)
        started = time.perf_counter_ns()
        with socket.create_connection(address, timeout=LATENCY_TIMEOUT_S) as sender:
            sender.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sender.sendall(put)
            status, received = read_response(receiver)
            stopped = time.perf_counter_ns()
            sender_status, reply = read_response(sender)
    if status != 200 or received != body:
        raise BenchError(f"receiver got {status} and {len(received)} bytes: {received[:200]!r}")
    if sender_status != 200 or b"[ERROR]" in reply:
        raise BenchError(f"sender got {sender_status}: {reply[-300:]!r}")
    if RECEIVER_WAS_THERE[server.name] not in reply:
        return None
    return (stopped - started) / 1e6


def latency_blocks(
    servers: Sequence[Server], round_no: int, samples: int, body: bytes, settle_s: float
) -> list[LatencyBlock]:
    """``samples`` good samples per server, taken on each server in turn.

    Sample k of every server is taken before sample k+1 of any, so whatever
    the shared machine does meanwhile falls on all of them alike (blocks of
    samples in a row let a slow minute land on one server only). The bench's
    own GC is held off throughout.
    """
    blocks = [LatencyBlock(server=server.name, round=round_no) for server in servers]
    for server in servers:
        server.check_alive()
    pending = list(zip(servers, blocks, strict=True))
    gc.collect()
    gc.disable()
    try:
        while pending:
            for pair in list(pending):
                server, block = pair
                if not take_sample(server, block, body, settle_s) or (
                        len(block.samples_ms) >= samples):
                    pending.remove(pair)
    finally:
        gc.enable()
    return blocks


def take_sample(server: Server, block: LatencyBlock, body: bytes, settle_s: float) -> bool:
    """One try at a sample for ``block``; False once it has failed for good."""
    try:
        ms = latency_sample(server, body, settle_s)
        if ms is None:
            block.errors.append("receiver not registered before the sender came")
    except (OSError, ValueError, BenchError) as e:
        ms = None
        block.errors.append(f"{type(e).__name__}: {e}")
    if ms is not None:
        block.samples_ms.append(ms)
        return True
    block.retries += 1
    if block.retries > LATENCY_MAX_RETRIES:
        block.ok = False
        server.check_alive()
        return False
    return True


def latency_block(
    server: Server, round_no: int, samples: int, body: bytes, settle_s: float
) -> LatencyBlock:
    """``samples`` good samples in a row on one server."""
    (block,) = latency_blocks([server], round_no, samples, body, settle_s)
    return block


def latency_line(block: LatencyBlock, label: str) -> str:
    head = f"  r{block.round} {label:<15} {block.server:<13}"
    if not block.ok:
        return f"{head} FAILED after {len(block.samples_ms)} samples: {block.errors[-1]}"
    text = (
        f"{head} median {block.median_ms:6.3f} ms  p99 {block.p99_ms:6.3f} ms"
        f"  ({len(block.samples_ms)} samples"
    )
    if block.retries:
        text += f", {block.retries} retaken: {Counter(block.errors).most_common(1)[0][0]}"
    return text + ")"


def measure_latency(
    bench: Bench, servers: Sequence[Server], round_no: int, args: argparse.Namespace
) -> None:
    blocks = latency_blocks(
        servers, round_no, args.latency_samples, bench.latency_body, args.settle_s)
    for block in blocks:
        bench.latency.append(block)
        print(latency_line(block, "latency"), flush=True)


# --------------------------------------------------------------------------
# the plan


def payload_sizes(args: argparse.Namespace) -> tuple[int, list[int]]:
    """How big the payload file must be (0: none), and the prefixes relayed."""
    sizes = []
    if any(kind in args.only for kind in BULK_KINDS):
        sizes.append(args.size)
    if "rss" in args.only:
        sizes.append(min(RSS_BYTES, args.size))
    sizes += [args.paced[kind] for kind in PACED_KINDS if kind in args.only]
    return max(sizes, default=0), sizes


def warm_up(bench: Bench, servers: dict[str, Server], args: argparse.Namespace) -> None:
    """Unmeasured: each body kind the run uses, relayed once per server into
    sha256sum, and --latency-warmup latency samples per server."""
    kinds = args.only
    paced = [args.paced[kind] for kind in PACED_KINDS if kind in kinds]
    plan = []
    if "chunked" in kinds or "spectators" in kinds:
        plan.append(("chunked", args.size))
    elif paced:
        plan.append(("chunked", max(paced)))
    if "sized" in kinds:
        plan.append(("sized", args.size))
    if not plan and "latency" not in kinds:
        return
    print("warm-up (not counted):", flush=True)
    for body, nbytes in plan:
        for server in servers.values():
            measure(bench, server, Transfer("warmup-" + body, body, nbytes, 0, verify=True))
    if "latency" in kinds:
        for server in servers.values():
            block = latency_block(server, 0, args.latency_warmup, bench.latency_body, args.settle_s)
            print(latency_line(block, "latency-warmup"), flush=True)


def run_rounds(bench: Bench, servers: dict[str, Server], args: argparse.Namespace) -> None:
    """A warm-up, then ``--rounds`` rounds, each server in turn for each kind."""
    kinds = args.only
    warm_up(bench, servers, args)
    for round_no in range(1, args.rounds + 1):
        print(f"round {round_no}/{args.rounds}:", flush=True)
        if "latency" in kinds:
            order = list(servers.values())
            measure_latency(bench, order if round_no % 2 else order[::-1], round_no, args)
        for body in ("chunked", "sized"):
            if body in kinds:
                for server in servers.values():
                    measure(bench, server, Transfer(body, body, args.size, round_no))
        for kind, rate in PACED_KINDS.items():
            if kind in kinds:
                for server in servers.values():
                    paced = Transfer(
                        kind, "chunked", args.paced[kind], round_no, sender_limit_rate=rate
                    )
                    measure(bench, server, paced)
        if "rss" in kinds:
            for name in servers:
                measure_rss(bench, name, min(RSS_BYTES, args.size), round_no)
        if "spectators" in kinds and "hoodypipe" in servers:
            counts = (0, args.spectators)
            for count in counts if round_no % 2 else reversed(counts):
                watched = Transfer("spectators", "chunked", args.size, round_no, count)
                measure(bench, servers["hoodypipe"], watched)


def measure_rss(bench: Bench, name: str, nbytes: int, round_no: int) -> None:
    """Slow-receiver memory test on a fresh server, so that memory the
    long-lived server kept from earlier 2 GiB transfers cannot hide growth.
    One small transfer first takes first-request costs out of the baseline.
    """
    server = start_server(bench, name)
    try:
        relay(bench, server, Transfer("rss-warmup", "chunked", 10**6, round_no))
        slow = Transfer("rss", "chunked", nbytes, round_no, limit_rate=RSS_LIMIT_RATE)
        measure(bench, server, slow)
    except BenchError as e:
        print(f"  r{round_no} {'rss':<15} {name:<13} FAILED: {e}", flush=True)
    finally:
        bench.processes.stop(server.proc, grace_s=10.0)


# --------------------------------------------------------------------------
# profile


def find_py_spy() -> Path:
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if not found:
        raise BenchError(f"py-spy not found: {sys.executable} -m pip install py-spy")
    return Path(found)


PROFILED_KINDS = ("chunked", "sized", "latency", "paced50", "paced200")


def profile(bench: Bench, server: Server, args: argparse.Namespace) -> dict[str, Any]:
    """Each selected kind once more under ``py-spy record``; top functions.

    chunked, sized and paced*: one transfer; latency: --profile-samples
    samples in a row (the profile covers the settle pauses too, which are
    idle time in ``epoll_wait`` and so left out of the shares).
    """
    py_spy = find_py_spy()
    report = {}
    for kind in PROFILED_KINDS:
        if kind not in args.only:
            continue
        if kind == "latency":
            run = profiled_latency(bench, server, args)
        else:
            body = "sized" if kind == "sized" else "chunked"
            nbytes = args.paced[kind] if kind in PACED_KINDS else args.size
            rate = PACED_KINDS.get(kind)
            transfer = Transfer("profile-" + kind, body, nbytes, 0, sender_limit_rate=rate)
            run = profiled_transfer(bench, server, transfer)
        report[kind] = record_profile(bench, server, py_spy, kind, args.profile_rate, run)
    return report


def profiled_transfer(
    bench: Bench, server: Server, transfer: Transfer
) -> Callable[[], tuple[float, float]]:
    def run() -> tuple[float, float]:
        result = measure(bench, server, transfer)
        return result.wall_s, result.cpu_s

    return run


def profiled_latency(
    bench: Bench, server: Server, args: argparse.Namespace
) -> Callable[[], tuple[float, float]]:
    def run() -> tuple[float, float]:
        cpu_before = read_cpu_seconds(server.pid)
        started = time.monotonic()
        block = latency_block(
            server, 0, args.profile_samples, bench.latency_body, args.settle_s
        )
        wall_s = time.monotonic() - started
        print(latency_line(block, "profile-latency"), flush=True)
        return wall_s, read_cpu_seconds(server.pid) - cpu_before

    return run


def record_profile(
    bench: Bench,
    server: Server,
    py_spy: Path,
    kind: str,
    rate: int,
    run: Callable[[], tuple[float, float]],
) -> dict[str, Any]:
    """Attach py-spy, do ``run``, stop py-spy with SIGINT, count the stacks.

    ``--native`` puts the C functions under the Python frames, so time in
    ``send``/``recv`` is told apart from Python work and ``epoll_wait`` (which
    py-spy does not always count as idle) can be set aside.
    """
    raw = bench.scratch(f"py-spy-{kind}.txt")
    log = bench.scratch(f"py-spy-{kind}.log")
    argv = [str(py_spy), "record", "--pid", str(server.pid), "--format", "raw"]
    argv += ["--rate", str(rate), "--native", "--output", str(raw)]
    with log.open("wb") as log_file:
        spy = bench.processes.start(
            argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT
        )
    try:
        wait_for_text(log, "Sampling process", spy)
        wall_s, cpu_s = run()
        spy.send_signal(signal.SIGINT)
        with suppress(subprocess.TimeoutExpired):
            spy.wait(60)
    finally:
        bench.processes.stop(spy)
    if not raw.exists():
        raise BenchError(f"py-spy wrote nothing: {tail(log)}")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    kept = OUT_DIR / f"py-spy-{kind}-{stamp}.txt"
    shutil.copyfile(raw, kept)
    stacks = summarise_stacks(raw.read_text())
    errors = re.search(r"Errors: (\d+)", log.read_text(errors="replace"))
    return {
        "rate": rate,
        "raw_stacks": str(kept.relative_to(REPO_ROOT)),
        "py_spy_errors": int(errors.group(1)) if errors else None,
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "busy_samples": stacks.busy,
        "waiting_samples": stacks.waiting,
        "own": stacks.own.most_common(30),
        "total": stacks.total.most_common(100),
    }


def wait_for_text(path: Path, text: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15.0
    while text not in path.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise BenchError(f"py-spy did not start: {tail(path)}")
        time.sleep(0.05)


def frame_function(frame: str) -> str:
    """``doRead (twisted/internet/tcp.py:248)`` -> ``doRead (twisted/...tcp.py)``."""
    return re.sub(r":\d+\)$", ")", frame)


@dataclass
class StackSummary:
    """Samples per function: as the leaf (own) and anywhere on the stack (total)."""

    own: Counter[str] = field(default_factory=Counter)
    total: Counter[str] = field(default_factory=Counter)
    busy: int = 0
    waiting: int = 0


WAITING_LEAVES = frozenset({"epoll_wait (libc.so.6)"})
EVERYWHERE_SHARE = 0.995  # frames on this share of busy stacks are the reactor's skeleton


def summarise_stacks(raw: str) -> StackSummary:
    """Count py-spy raw stacks; those waiting in ``epoll_wait`` only by number."""
    summary = StackSummary()
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame_function(f) for f in stack.split(";")]
        if frames[-1] in WAITING_LEAVES:
            summary.waiting += count
            continue
        summary.busy += count
        summary.own[frames[-1]] += count
        for function in set(frames):
            summary.total[function] += count
    return summary


def print_profile(report: dict[str, Any]) -> None:
    """Top functions by own samples and inclusive, and hoodypipe's functions inclusive."""
    for kind, data in report.items():
        busy = data["busy_samples"] or 1
        print(
            f"\nprofile, hoodypipe {kind}: py-spy --native {data['rate']} Hz; "
            f"{data['wall_s']:.2f} s wall, {data['cpu_s']:.2f} s server CPU; "
            f"{data['busy_samples']} busy samples (+{data['waiting_samples']} "
            f"in epoll_wait, left out; {data['py_spy_errors']} sampling errors)"
        )
        print("  own time (% of busy samples, leaf frame):")
        for function, count in data["own"][:15]:
            print(f"    {count / busy:6.1%}  {function}")
        everywhere = [f for f, c in data["total"] if c >= EVERYWHERE_SHARE * busy]
        print(
            "  cumulative (% of busy samples with the function anywhere on the stack; "
            f"the {len(everywhere)} frames on every stack, start-up and the reactor "
            "loop, left out):"
        )
        below = [(f, c) for f, c in data["total"] if f not in everywhere]
        for function, count in below[:15]:
            print(f"    {count / busy:6.1%}  {function}")
        print("  hoodypipe's own functions, inclusive (% of busy samples on the stack):")
        ours = [(f, c) for f, c in data["total"] if "(hoodypipe/" in f]
        for function, count in ours[:12]:
            print(f"    {count / busy:6.1%}  {function}")


# --------------------------------------------------------------------------
# summary


def _spread(values: list[float], fmt: str) -> str:
    if not values:
        return "-"
    median = format(statistics.median(values), fmt)
    if len(values) == 1:
        return median
    return f"{median} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def _verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def select(
    ms: Sequence[Measurement], kind: str, server: str, spectators: int | None = None
) -> list[Measurement]:
    return [
        m
        for m in ms
        if m.ok
        and m.kind == kind
        and m.server == server
        and (spectators is None or m.spectators == spectators)
    ]


def median_of(ms: Sequence[Measurement], attribute: str) -> float | None:
    values = [float(getattr(m, attribute)) for m in ms]
    return statistics.median(values) if values else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def round_ratios(ms: Sequence[Measurement], kind: str, attribute: str) -> list[float]:
    """hoodypipe / piping-server of ``attribute`` within each round both finished."""
    theirs = {m.round: float(getattr(m, attribute)) for m in select(ms, kind, "piping-server")}
    return [
        float(getattr(m, attribute)) / theirs[m.round]
        for m in select(ms, kind, "hoodypipe")
        if theirs.get(m.round)
    ]


def print_round_ratios(label: str, values: Sequence[float]) -> None:
    if len(values) > 1:
        listed = " ".join(f"{v:.2f}" for v in values)
        print(f"{'':<8}{label:<18}per round: {listed}")


def summarise(
    ms: Sequence[Measurement],
    blocks: Sequence[LatencyBlock],
    servers: Sequence[str],
    spectator_count: int,
) -> dict[str, Any]:
    """Medians per kind and server, and the hoodypipe/piping-server ratios."""
    summary: dict[str, Any] = {"latency": summarise_latency(blocks, servers)}
    for kind in ("chunked", "sized", "rss", *PACED_KINDS):
        per_server: dict[str, dict[str, Any]] = {}
        for server in servers:
            chosen = select(ms, kind, server)
            per_server[server] = {
                "runs": len(chosen),
                "failed": sum(1 for m in ms if not m.ok and m.kind == kind and m.server == server),
                "mb_per_s": median_of(chosen, "mb_per_s"),
                "cpu_s_per_gb": median_of(chosen, "cpu_s_per_gb"),
                "cpu_percent": median_of(chosen, "cpu_percent"),
                "rss_growth_mb": (median_of(chosen, "rss_growth") or 0) / 1e6 if chosen else None,
                "rss_growth_max_mb": max(m.rss_growth for m in chosen) / 1e6 if chosen else None,
            }
        hp, ps = per_server.get("hoodypipe", {}), per_server.get("piping-server", {})
        per_server["ratio"] = {
            "mb_per_s": ratio(hp.get("mb_per_s"), ps.get("mb_per_s")),
            "cpu_s_per_gb": ratio(hp.get("cpu_s_per_gb"), ps.get("cpu_s_per_gb")),
            "cpu_percent": ratio(hp.get("cpu_percent"), ps.get("cpu_percent")),
            "cpu_s_per_gb_per_round": round_ratios(ms, kind, "cpu_s_per_gb"),
            "cpu_percent_per_round": round_ratios(ms, kind, "cpu_percent"),
        }
        summary[kind] = per_server
    alone = select(ms, "spectators", "hoodypipe", 0)
    watched = select(ms, "spectators", "hoodypipe", spectator_count)
    paired = {m.round: m.mb_per_s for m in alone}
    summary["spectators"] = {
        "count": spectator_count,
        "mb_per_s_without": median_of(alone, "mb_per_s"),
        "mb_per_s_with": median_of(watched, "mb_per_s"),
        "cpu_s_per_gb_without": median_of(alone, "cpu_s_per_gb"),
        "cpu_s_per_gb_with": median_of(watched, "cpu_s_per_gb"),
        "ratio": ratio(median_of(watched, "mb_per_s"), median_of(alone, "mb_per_s")),
        "ratio_per_round": [m.mb_per_s / paired[m.round] for m in watched if m.round in paired],
        "spectators_saw_done": [m.spectators_done for m in watched],
    }
    return summary


def summarise_latency(blocks: Sequence[LatencyBlock], servers: Sequence[str]) -> dict[str, Any]:
    """Per server: the median over rounds of each round's median and p99, the
    same over all samples pooled; ratios of the per-round figures."""
    summary: dict[str, Any] = {}
    for server in servers:
        good = [b for b in blocks if b.server == server and b.ok]
        pooled = [ms for b in good for ms in b.samples_ms]
        summary[server] = {
            "rounds": len(good),
            "failed": sum(1 for b in blocks if b.server == server and not b.ok),
            "samples": len(pooled),
            "retaken": sum(b.retries for b in blocks if b.server == server),
            "median_ms": statistics.median([b.median_ms for b in good]) if good else None,
            "p99_ms": statistics.median([b.p99_ms for b in good]) if good else None,
            "round_medians_ms": [b.median_ms for b in good],
            "round_p99s_ms": [b.p99_ms for b in good],
            "pooled_median_ms": statistics.median(pooled) if pooled else None,
            "pooled_p99_ms": percentile(pooled, 0.99) if pooled else None,
        }
    hp, ps = summary.get("hoodypipe", {}), summary.get("piping-server", {})
    theirs = {b.round: b.median_ms for b in blocks if b.server == "piping-server" and b.ok}
    summary["ratio"] = {
        "median": ratio(hp.get("median_ms"), ps.get("median_ms")),
        "p99": ratio(hp.get("p99_ms"), ps.get("p99_ms")),
        "median_per_round": [
            b.median_ms / theirs[b.round]
            for b in blocks
            if b.server == "hoodypipe" and b.ok and b.round in theirs
        ],
    }
    return summary


def print_table(
    ms: Sequence[Measurement],
    summary: dict[str, Any],
    kinds: Sequence[str],
    servers: Sequence[str],
) -> None:
    if "latency" in kinds:
        print_latency(summary["latency"], servers)
    print_throughput(ms, summary, kinds, servers)
    if any(kind in kinds for kind in PACED_KINDS):
        print_paced(ms, summary, kinds, servers)
    if "rss" in kinds:
        print_rss(ms, summary, servers)
    if "spectators" in kinds and "hoodypipe" in servers:
        print_spectators(summary["spectators"])


def print_throughput(
    ms: Sequence[Measurement],
    summary: dict[str, Any],
    kinds: Sequence[str],
    servers: Sequence[str],
) -> None:
    if "chunked" not in kinds and "sized" not in kinds:
        return
    both = "hoodypipe" in servers and "piping-server" in servers
    print(f"\n{'':<26}{'MB/s median (min-max)':<28}CPU-s/GB median (min-max)")
    for kind in ("chunked", "sized"):
        if kind not in kinds:
            continue
        for server in servers:
            chosen = select(ms, kind, server)
            failed = summary[kind][server]["failed"]
            note = f"   {failed} FAILED" if failed else ""
            print(
                f"{kind:<8}{server:<18}"
                f"{_spread([m.mb_per_s for m in chosen], '.0f'):<28}"
                f"{_spread([m.cpu_s_per_gb for m in chosen], '.3f')}{note}"
            )
        r = summary[kind]["ratio"]
        if both and r["cpu_s_per_gb"] is not None and r["mb_per_s"] is not None:
            cpu_ok = r["cpu_s_per_gb"] <= TARGET_CPU_RATIO
            print(
                f"{kind:<8}{'hoodypipe/piping':<18}{r['mb_per_s']:<28.2f}"
                f"{r['cpu_s_per_gb']:.2f}  target <= {TARGET_CPU_RATIO}: "
                f"{_verdict(cpu_ok)}"
            )
            print_round_ratios("CPU-s/GB ratio", r["cpu_s_per_gb_per_round"])


def print_latency(latency: dict[str, Any], servers: Sequence[str]) -> None:
    print(
        f"\nlatency: {LATENCY_BYTES} B PUT to a waiting GET, raw sockets, "
        "sender connect -> receiver has the body (ms)"
    )
    print(
        f"{'':<26}{'median (min-max of rounds)':<28}{'p99 (min-max of rounds)':<28}"
        "all samples: median / p99"
    )
    for server in servers:
        row = latency[server]
        note = f"   {row['failed']} FAILED" if row["failed"] else ""
        if row["median_ms"] is None:
            print(f"{'latency':<8}{server:<18}no successful round{note}")
            continue
        print(
            f"{'latency':<8}{server:<18}"
            f"{_spread(row['round_medians_ms'], '.3f'):<28}"
            f"{_spread(row['round_p99s_ms'], '.3f'):<28}"
            f"{row['pooled_median_ms']:.3f} / {row['pooled_p99_ms']:.3f}"
            f"  ({row['samples']} samples, {row['retaken']} retaken){note}"
        )
    r = latency["ratio"]
    if r["median"] is not None and r["p99"] is not None:
        print(
            f"{'latency':<8}{'hoodypipe/piping':<18}{r['median']:<28.2f}{r['p99']:<28.2f}"
            f"target median <= {TARGET_LATENCY_RATIO}: "
            f"{_verdict(r['median'] <= TARGET_LATENCY_RATIO)}"
        )
        print_round_ratios("median ratio", r["median_per_round"])


def print_paced(
    ms: Sequence[Measurement],
    summary: dict[str, Any],
    kinds: Sequence[str],
    servers: Sequence[str],
) -> None:
    print(
        f"\n{'':<26}{'CPU % of a core (min-max)':<28}{'CPU-s/GB (min-max)':<28}"
        "MB/s median"
    )
    for kind in PACED_KINDS:
        if kind not in kinds:
            continue
        for server in servers:
            chosen = select(ms, kind, server)
            failed = summary[kind][server]["failed"]
            note = f"   {failed} FAILED" if failed else ""
            print(
                f"{kind:<9}{server:<17}"
                f"{_spread([m.cpu_percent for m in chosen], '.1f'):<28}"
                f"{_spread([m.cpu_s_per_gb for m in chosen], '.3f'):<28}"
                f"{_spread([m.mb_per_s for m in chosen], '.1f')}{note}"
            )
        r = summary[kind]["ratio"]
        if r["cpu_percent"] is not None and r["cpu_s_per_gb"] is not None:
            print(
                f"{kind:<9}{'hoodypipe/piping':<17}{r['cpu_percent']:<28.2f}"
                f"{r['cpu_s_per_gb']:<28.2f}target CPU % <= {TARGET_PACED_RATIO}: "
                f"{_verdict(r['cpu_percent'] <= TARGET_PACED_RATIO)}"
            )
            print_round_ratios("CPU % ratio", r["cpu_percent_per_round"])


def print_rss(ms: Sequence[Measurement], summary: dict[str, Any], servers: Sequence[str]) -> None:
    sizes = sorted({m.bytes for m in ms if m.kind == "rss"})
    amount = f"{sizes[0] / 1e6:.0f} MB" if sizes else "?"
    print(
        f"\nRSS growth on a fresh server, {amount} chunked to a --limit-rate "
        f"{RSS_LIMIT_RATE} receiver (peak - before, MB = 10^6 bytes)"
    )
    for server in servers:
        row = summary["rss"][server]
        if row["rss_growth_mb"] is None:
            print(f"  {server:<16}no successful run")
            continue
        target = ""
        if server == "hoodypipe":
            ok = row["rss_growth_max_mb"] < TARGET_RSS_MB
            target = f"   target < {TARGET_RSS_MB:.0f} MB: {_verdict(ok)}"
        print(
            f"  {server:<16}median {row['rss_growth_mb']:6.1f}  "
            f"max {row['rss_growth_max_mb']:6.1f}{target}"
        )
    memory = summary.get("long_lived_rss", {})
    if memory:
        print("long-lived servers' RSS over the run (MB): start / peak / end")
    for server, rss in memory.items():
        print(
            f"  {server:<16}{rss['start'] / 1e6:6.1f} / {rss['peak'] / 1e6:6.1f} "
            f"/ {rss['end'] / 1e6:6.1f}"
        )


def print_spectators(spect: dict[str, Any]) -> None:
    print(f"\nspectators (hoodypipe, chunked): 0 vs {spect['count']} ?progress")
    if spect["ratio"] is None:
        print("  no successful pair")
        return
    print(
        f"  without: {spect['mb_per_s_without']:.0f} MB/s "
        f"{spect['cpu_s_per_gb_without']:.3f} CPU-s/GB; "
        f"with: {spect['mb_per_s_with']:.0f} MB/s "
        f"{spect['cpu_s_per_gb_with']:.3f} CPU-s/GB"
    )
    rounds = " ".join(f"{x:.3f}" for x in spect["ratio_per_round"])
    done = ", ".join(f"{d}/{spect['count']}" for d in spect["spectators_saw_done"])
    print(
        f"  throughput ratio with/without: {spect['ratio']:.3f} "
        f"(per round {rounds})   target >= {TARGET_SPECTATOR_RATIO}: "
        f"{_verdict(spect['ratio'] >= TARGET_SPECTATOR_RATIO)}"
    )
    print(f"  spectators that saw `done`: {done}")


# --------------------------------------------------------------------------
# main


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark hoodypipe against piping-server (see bench/README.md)."
    )
    parser.add_argument(
        "--size",
        type=parse_size,
        default=parse_size("2GiB"),
        help="body size, e.g. 2GiB (default), 512MiB, 300MB",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument(
        "--only",
        type=parse_choices(ALL_KINDS),
        default=list(ALL_KINDS),
        help="comma-separated: " + ",".join(ALL_KINDS),
    )
    parser.add_argument(
        "--servers",
        type=parse_choices(ALL_SERVERS),
        default=list(ALL_SERVERS),
        help="comma-separated: " + ",".join(ALL_SERVERS),
    )
    parser.add_argument(
        "--spectators",
        type=int,
        default=50,
        help="spectators in the spectator test (default 50)",
    )
    for kind in PACED_KINDS:
        parser.add_argument(
            f"--{kind}-size",
            type=parse_size,
            default=parse_size(PACED_DEFAULT_SIZES[kind]),
            help=f"bytes relayed in {kind} (default {PACED_DEFAULT_SIZES[kind]})",
        )
    parser.add_argument(
        "--latency-samples",
        type=int,
        default=200,
        help="latency samples per server and round (default 200)",
    )
    parser.add_argument(
        "--latency-warmup",
        type=int,
        default=50,
        help="unmeasured latency samples per server first (default 50)",
    )
    parser.add_argument(
        "--latency-settle-ms",
        type=float,
        default=10.0,
        help="pause between the receiver's GET and the sender's connect (default 10)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile each selected kind of chunked, sized, latency, paced50, "
        "paced200 once more on hoodypipe with py-spy",
    )
    parser.add_argument(
        "--profile-rate",
        type=int,
        default=250,
        help="py-spy samples per second (default 250)",
    )
    parser.add_argument(
        "--profile-samples",
        type=int,
        default=1000,
        help="latency samples under the profiler (default 1000)",
    )
    parser.add_argument(
        "--sha256",
        action="store_true",
        help="hoodypipe senders ask for a receipt (?sha256), checked against the payload",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help=f"run each server on CPU {SERVER_CPU} and every client on CPU {CLIENT_CPU}, "
        "so that rounds do not differ by where the scheduler puts the curls",
    )
    parser.add_argument(
        "--twistd",
        type=Path,
        default=Path(sys.executable).parent / "twistd",
        help="twistd to run hoodypipe with (default: next to python)",
    )
    parser.add_argument(
        "--checkout",
        type=Path,
        default=REPO_ROOT,
        help="the checkout whose hoodypipe is run (default: the one holding this script)",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.spectators < 1:
        parser.error("--rounds and --spectators must be at least 1")
    if min(args.latency_samples, args.profile_samples) < 1 or args.latency_warmup < 0:
        parser.error("--latency-samples and --profile-samples must be at least 1")
    if args.latency_settle_ms < 0:
        parser.error("--latency-settle-ms must not be negative")
    if args.pin and not {SERVER_CPU, CLIENT_CPU} <= os.sched_getaffinity(0):
        parser.error(f"--pin needs CPUs {SERVER_CPU} and {CLIENT_CPU}")
    args.checkout = args.checkout.resolve()
    if not (args.checkout / "hoodypipe" / "__init__.py").exists():
        parser.error(f"--checkout {args.checkout}: no hoodypipe package there")
    args.settle_s = args.latency_settle_ms / 1000
    args.paced = {kind: getattr(args, f"{kind}_size") for kind in PACED_KINDS}
    return args


def git(checkout: Path, *args: str) -> str:
    run = subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True)
    return run.stdout.strip()


def environment(checkout: Path) -> dict[str, Any]:
    """Versions and settings that the numbers depend on."""
    commit = git(checkout, "log", "-1", "--format=%h", "--", "hoodypipe", "twisted") or "none"
    if git(checkout, "status", "--porcelain", "--", "hoodypipe", "twisted"):
        commit += " plus uncommitted changes"
    return {
        "checkout": str(checkout),
        "hoodypipe_commit": commit,
        "piping_server": PIPING_VERSION,
        "node": command_version(["node", "--version"]),
        "curl": " ".join(command_version(["curl", "--version"]).split()[:2]),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "malloc_env": {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")},
    }


def print_header(args: argparse.Namespace, started: datetime.datetime, env: dict[str, Any]) -> None:
    print("hoodypipe benchmark, " + started.strftime("%Y-%m-%d %H:%M:%S %Z"))
    print("command: " + shlex.join([sys.executable, *sys.argv]))
    print(
        f"rounds {args.rounds}; only {','.join(args.only)}; servers {','.join(args.servers)}"
    )
    if any(kind in args.only for kind in (*BULK_KINDS, "rss")):
        print(
            f"size {args.size} bytes ({binary_size(args.size)}) of random data from a "
            "temp file"
        )
    if any(kind != "latency" for kind in args.only):
        print(
            "clients: chunked = cat FILE | curl -sS -T - URL, "
            "sized = curl -sS -T FILE URL, receiver = curl -sS URL -o /dev/null"
        )
    for kind, rate in PACED_KINDS.items():
        if kind in args.only:
            nbytes = args.paced[kind]
            print(
                f"{kind}: chunked sender with --limit-rate {rate}, {nbytes / 1e6:.0f} MB "
                f"({binary_size(nbytes)})"
            )
    if "latency" in args.only:
        print(
            f"latency: socket clients in this process, {LATENCY_BYTES} B PUT body in one "
            f"sendall to a GET waiting {args.latency_settle_ms:g} ms; "
            f"{args.latency_samples} samples per server and round "
            f"(+{args.latency_warmup} warm-up)"
        )
    if args.pin:
        print(f"--pin: servers on CPU {SERVER_CPU}, clients and this script on CPU {CLIENT_CPU}")
    if args.sha256:
        print("--sha256: every hoodypipe send has ?sha256 (the receipt is checked)")
    print(f"hoodypipe from {env['checkout']}")
    print(
        f"hoodypipe at {env['hoodypipe_commit']}; piping-server {env['piping_server']} "
        f"(node {env['node']}); {env['curl']}; python {env['python']}; "
        f"{env['cpus']} CPUs"
    )
    if env["malloc_env"]:
        print(f"NOTE: inherited malloc environment: {env['malloc_env']}")
    print(flush=True)


def write_json(
    started: datetime.datetime,
    args: argparse.Namespace,
    env: dict[str, Any],
    bench: Bench,
    summary: dict[str, Any],
    profile_report: dict[str, Any] | None,
) -> Path:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"results-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    document = {
        "date": started.isoformat(),
        "command": [sys.executable, *sys.argv],
        "options": {
            "size": args.size,
            "rounds": args.rounds,
            "only": args.only,
            "servers": args.servers,
            "spectators": args.spectators,
            "paced_sizes": args.paced,
            "latency_samples": args.latency_samples,
            "latency_warmup": args.latency_warmup,
            "latency_settle_ms": args.latency_settle_ms,
            "profile": args.profile,
            "pin": args.pin,
            "checkout": str(args.checkout),
        },
        "environment": env,
        "summary": summary,
        "measurements": [asdict(m) for m in bench.measurements],
        "latency": [asdict(block) for block in bench.latency],
        "profile": profile_report,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


@contextmanager
def cleanup_on_exit() -> Iterator[Processes]:
    """Processes that are all stopped on the way out, also on Ctrl-C / SIGTERM."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    processes = Processes()
    try:
        yield processes
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        processes.stop_all()
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    started = datetime.datetime.now(datetime.UTC)
    env = environment(args.checkout)
    print_header(args, started, env)
    if "piping-server" in args.servers:
        ensure_piping_server()
    if args.pin:
        os.sched_setaffinity(0, {CLIENT_CPU})  # every client started from here inherits it
    profile_report: dict[str, Any] | None = None
    memory: dict[str, dict[str, int]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="hoodypipe-bench-") as tmp,
        cleanup_on_exit() as processes,
    ):
        workdir = Path(tmp)
        payload = None
        size, marks = payload_sizes(args)
        if size:
            made = time.monotonic()
            payload = make_payload(workdir, size, marks)
            print(
                f"payload: {payload.size} random bytes in {time.monotonic() - made:.1f} s,"
                f" sha256 {payload.sha256[size][:16]}...",
                flush=True,
            )
        bench = Bench(processes, workdir, payload, args.twistd, args.checkout,
                      sha256=args.sha256, pin=args.pin)
        servers = {name: start_server(bench, name) for name in args.servers}
        run_rounds(bench, servers, args)
        if args.profile and "hoodypipe" in servers:
            profile_report = profile(bench, servers["hoodypipe"], args)
        for server in servers.values():
            memory[server.name] = {
                "start": server.rss_start,
                "peak": server.rss_peak,
                "end": read_rss_bytes(server.pid),
            }
            if server.proc.poll() is not None:
                print(f"NOTE: {server.name} exited early; log tail:\n{tail(server.log)}")
    summary = summarise(bench.measurements, bench.latency, args.servers, args.spectators)
    summary["long_lived_rss"] = memory
    print_table(bench.measurements, summary, args.only, args.servers)
    if profile_report:
        print_profile(profile_report)
    path = write_json(started, args, env, bench, summary, profile_report)
    print(f"\nresults: {path.relative_to(REPO_ROOT)}")
    failed = [m for m in bench.measurements if not m.ok]
    failed_blocks = [b for b in bench.latency if not b.ok]
    return 1 if failed or failed_blocks else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        print("\ninterrupted; all started processes were stopped", file=sys.stderr)
        sys.exit(130)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
