#!/usr/bin/env python3
"""
The latency row for judging one change: two or more servers up at once, their
samples interleaved one by one.

``run.py --only latency`` compares hoodypipe with piping-server in rounds, and
on a shared machine its medians drift by 10-20 % from one sitting to the next:
more than most single changes to the request path are worth. Here every
server under test is started first, and then each sample is taken on each
server in turn (A, B, C, A, B, C, ...), so whatever the machine does meanwhile
falls on all of them alike, and the ratios of the medians resolve a few
percent.

    python bench/ab_latency.py --checkout ../main --checkout . --node
    python bench/ab_latency.py --checkout . --node --samples 3000

Each ``--checkout`` is a hoodypipe checkout (run as ``run.py`` runs it, with
that checkout on ``PYTHONPATH``); ``--node`` adds piping-server. The sample is
``run.py``'s own: a 1 KiB PUT to a GET waiting ``--settle-ms``, timed from
the sender's connect until the receiver has the body. The first server listed
is the baseline of the ratios. A benchmark, not a test: it fails only when a
transfer goes wrong.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402  (run.py beside this file: its sample, ports and servers)

READY_TIMEOUT_S = 30.0


def start(argv: list[str], env: dict[str, str], ready: str, stack: ExitStack) -> None:
    """Start one server; back once ``ready`` (a URL) answers."""

    def answers() -> bool:
        try:
            with urllib.request.urlopen(ready, timeout=1.0):
                return True
        except (OSError, urllib.error.URLError):
            return False

    run.start_until_ready(argv, env, stack, answers, ready, READY_TIMEOUT_S)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkout", action="append", default=[], type=Path,
                        help="a hoodypipe checkout to run (repeat for each)")
    parser.add_argument("--node", action="store_true", help="add piping-server")
    parser.add_argument("--samples", type=int, default=1000, help="per server (default 1000)")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured, per server")
    parser.add_argument("--settle-ms", type=float, default=10.0)
    parser.add_argument("--twistd", type=Path,
                        default=Path(sys.executable).with_name("twistd"))
    args = parser.parse_args()
    if len(args.checkout) + args.node < 2:
        parser.error("give at least two servers (--checkout twice, or --checkout and --node)")
    if args.node:
        run.ensure_piping_server()
    body = os.urandom(1024)
    labels: list[str] = []
    servers: list[SimpleNamespace] = []
    with ExitStack() as stack:
        for checkout in args.checkout:
            port = run.free_port()
            argv, ready = run.server_command("hoodypipe", port, args.twistd)
            start(argv, run.server_env(checkout.resolve()),
                  f"http://127.0.0.1:{port}{ready}", stack)
            labels.append(f"hoodypipe {checkout}")
            servers.append(SimpleNamespace(name="hoodypipe", port=port))
        if args.node:
            port = run.free_port()
            argv, ready = run.server_command("piping-server", port, args.twistd)
            start(argv, dict(os.environ), f"http://127.0.0.1:{port}{ready}", stack)
            labels.append("piping-server")
            servers.append(SimpleNamespace(name="piping-server", port=port))
        samples: list[list[float]] = [[] for _ in servers]
        settle = args.settle_ms / 1000
        for i in range(args.warmup + args.samples):
            for server, taken in zip(servers, samples, strict=True):
                ms = run.latency_sample(server, body, settle)  # type: ignore[arg-type]
                if i >= args.warmup and ms is not None:
                    taken.append(ms)
    base = statistics.median(samples[0])
    print(f"1 KiB latency, {args.samples} interleaved samples per server (ms)")
    for label, taken in zip(labels, samples, strict=True):
        taken.sort()
        median = statistics.median(taken)
        p10, p90 = taken[len(taken) // 10], taken[9 * len(taken) // 10]
        print(f"  {label:40s} median {median:6.3f}  p10 {p10:6.3f}  p90 {p90:6.3f}"
              f"  ({len(taken)} samples)  x{median / base:.3f} of the first")
    return 0


if __name__ == "__main__":
    run.run_script(main)
