"""Run the ``hoodypipe`` console script as a user would, for the client's live tests."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

from twisted.internet.threads import deferToThread

from tests.kit.service import REPO, service_env


def run_cli(*args: str, tty: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the console script's module (bounded); blocking, so call in a thread."""
    command = [sys.executable, "-m", "hoodypipe.client.cli", *args]
    if not tty:
        return subprocess.run(command, capture_output=True, text=True, timeout=60,
                              env=service_env(), cwd=REPO, stdin=subprocess.DEVNULL)
    main, child = pty.openpty()
    try:
        finished = subprocess.run(command, stdout=child, stderr=subprocess.PIPE,
                                  text=True, timeout=60, env=service_env(), cwd=REPO,
                                  stdin=subprocess.DEVNULL)
        os.close(child)
        child = -1
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        finished.stdout = b"".join(chunks).decode()
        return finished
    finally:
        os.close(main)
        if child >= 0:
            os.close(child)


async def cli(*args: str, tty: bool = False) -> subprocess.CompletedProcess[str]:
    finished: subprocess.CompletedProcess[str] = await deferToThread(
        run_cli, *args, tty=tty
    )
    return finished
