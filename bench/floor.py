#!/usr/bin/env python3
"""
The paced rows against the floor: how much of a relay's CPU is the framework's.

``run.py --only paced50`` compares hoodypipe with piping-server. This script
adds the two reference relays of ``floor_relays.py`` (a bare Twisted protocol
and a plain epoll loop, both doing nothing per read but ``recv`` and ``send``)
to the same sitting, so a target can be set against what Twisted itself
costs per read. Every server is started first and stays up (warm: node's JIT
is not measured); each round relays one paced body through each server in
turn; the table gives medians and each server's ratio to piping-server.

    python bench/floor.py                          # 50 MiB/s, 300 MB, 5 rounds
    python bench/floor.py --rate 200M --size 1GB
    python bench/floor.py --rate none --size 1GiB --pin   # the chunked row, unpaced

Each server's CPU is given as % of a core (what the paced rows compare) and
as CPU-seconds per GB (what the bulk rows compare). ``--pin`` runs every
server on one CPU and the curls on the other (``run.py --pin``).

A benchmark, not a test: it fails only when a transfer goes wrong.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402  (run.py beside this file: ports, servers, CPU readings)

READY_TIMEOUT_S = 30.0
SETTLE_S = 0.3  # the receiver's GET is in before the sender starts
# hoodypipe pins glibc's malloc thresholds itself (hoodypipe.ops.memory);
# without the same pins a 512 KiB recv costs the floors an mmap, an mremap
# and a munmap per read, and their figures swing 2x with what glibc's
# dynamic threshold happened to learn during the warm-up.
FLOOR_ENV = {"MALLOC_MMAP_THRESHOLD_": str(4 << 20), "MALLOC_TRIM_THRESHOLD_": str(32 << 20)}


def start(argv: list[str], env: dict[str, str], port: int, stack: ExitStack) -> int:
    """Start a server; its pid once it accepts on ``port``."""

    def accepts() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            return True
        except OSError:
            return False

    what = f"port {port}"
    return run.start_until_ready(argv, env, stack, accepts, what, READY_TIMEOUT_S).pid


def paced_transfer(
    pid: int, port: int, payload: Path, nbytes: int, rate: str | None
) -> tuple[float, float]:
    """Relay ``nbytes`` at ``rate`` (None: as fast as it goes); the server's
    CPU-seconds meanwhile and the wall seconds it took."""
    url = f"http://127.0.0.1:{port}/floor-{time.monotonic_ns()}"
    timeout = 60.0 + nbytes / 5e6
    receiver = subprocess.Popen(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{size_download}", url],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    try:
        time.sleep(SETTLE_S)
        cpu_before, started = run.read_cpu_seconds(pid), time.monotonic()
        limit = f"--limit-rate {rate} " if rate else ""
        sender = subprocess.run(
            f"head -c {nbytes} {payload} | curl -sS -o /dev/null -T - {limit}{url}",
            shell=True, timeout=timeout, check=False)
        received, _ = receiver.communicate(timeout=timeout)
        cpu_after, ended = run.read_cpu_seconds(pid), time.monotonic()
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
    if sender.returncode != 0 or received.strip() != str(nbytes).encode():
        raise run.BenchError(f"transfer on port {port} went wrong: sender exit "
                             f"{sender.returncode}, receiver got {received!r} bytes")
    return cpu_after - cpu_before, ended - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", default="50M",
                        help="curl --limit-rate (default 50M); none: no limit")
    parser.add_argument("--size", default="300MB", type=run.parse_size,
                        help="bytes per transfer (default 300MB)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--checkout", type=Path, default=HERE.parent,
                        help="the hoodypipe checkout to run (default: this one)")
    parser.add_argument("--twistd", type=Path,
                        default=Path(sys.executable).with_name("twistd"))
    parser.add_argument("--pin", action="store_true",
                        help=f"servers on CPU {run.SERVER_CPU}, curls on CPU {run.CLIENT_CPU}")
    args = parser.parse_args()
    rate = None if args.rate.lower() == "none" else args.rate
    run.ensure_piping_server()
    if args.pin:
        os.sched_setaffinity(0, {run.CLIENT_CPU})  # the curls started from here inherit it
    relays = HERE / "floor_relays.py"
    plain_env = dict(os.environ)
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        payload = Path(tmp) / "payload"
        with payload.open("wb") as out:
            for _ in range(0, args.size, 1 << 20):
                out.write(os.urandom(1 << 20))
        servers: dict[str, tuple[int, int]] = {}
        for name in ("hoodypipe", "piping-server"):
            port = run.free_port()
            argv, _ = run.server_command(name, port, args.twistd, args.pin)
            env = run.server_env(args.checkout.resolve()) if name == "hoodypipe" else plain_env
            servers[name] = (start(argv, env, port, stack), port)
        for kind in ("twisted", "epoll"):
            port = run.free_port()
            argv = [sys.executable, str(relays), kind, str(port)]
            argv = run.on_server_cpu(argv) if args.pin else argv
            servers[f"{kind} floor"] = (start(argv, FLOOR_ENV | plain_env, port, stack), port)
        for pid, port in servers.values():  # warm-up, not measured
            paced_transfer(pid, port, payload, min(args.size, 100_000_000), "500M")
        percent: dict[str, list[float]] = {name: [] for name in servers}
        per_gb: dict[str, list[float]] = {name: [] for name in servers}
        for round_no in range(1, args.rounds + 1):
            for name, (pid, port) in servers.items():
                cpu, wall = paced_transfer(pid, port, payload, args.size, rate)
                percent[name].append(100.0 * cpu / wall)
                per_gb[name].append(cpu / (args.size / 1e9))
            print(f"round {round_no}: " + "  ".join(
                f"{name} {percent[name][-1]:.2f}% {per_gb[name][-1]:.3f}"
                for name in servers), flush=True)
    print(f"\nCPU while relaying {args.size} bytes at "
          f"{'--limit-rate ' + rate if rate else 'full speed'}"
          f"{' (pinned)' if args.pin else ''}, median of {args.rounds}:")
    for unit, taken in (("% of a core", percent), ("CPU-s/GB", per_gb)):
        base = statistics.median(taken["piping-server"])
        print(f"  {unit}")
        for name, values in taken.items():
            median = statistics.median(values)
            print(f"    {name:15s} {median:7.3f}  (min {min(values):.3f}, max "
                  f"{max(values):.3f})  x{median / base:.2f} of piping-server")
    return 0


if __name__ == "__main__":
    run.run_script(main)
