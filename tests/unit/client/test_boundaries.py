"""
The client stands on its own: ``hoodypipe watch`` loads ``hoodypipe.client``
and ``hoodypipe.common`` only, never a server module (checked in a fresh
interpreter, since this test process has the whole server imported).
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.kit.service import REPO, service_env

SERVER_PACKAGES = ("core", "web", "bytepath", "spectators", "notify", "ops",
                   "service", "settings", "tap")


def loaded_by(module: str) -> list[str]:
    code = (f"import json, sys, {module}; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('hoodypipe'))))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=service_env(),
                          capture_output=True, text=True, timeout=60, check=True)
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def test_the_cli_loads_no_server_module() -> None:
    loaded = loaded_by("hoodypipe.client.cli")
    assert "hoodypipe.client.watch" in loaded and "hoodypipe.common.pagerduty" in loaded
    server = [m for m in loaded
              if m.split(".")[1:2] and m.split(".")[1] in SERVER_PACKAGES]
    assert server == []
    assert all(m == "hoodypipe" or m.startswith(("hoodypipe.client", "hoodypipe.common"))
               for m in loaded), loaded


def test_the_check_can_see_a_server_module() -> None:
    assert "hoodypipe.core.events" in loaded_by("hoodypipe.common.wire")
