"""The wheel installs into a fresh venv and twistd finds the plugin there."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.kit.service import REPO


def run(*command: str, cwd: Path | None = None, timeout: float = 600) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_wheel_installs_and_twistd_lists_hoodypipe(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps",
        "-w", str(dist), str(REPO))
    wheels = list(dist.glob("hoodypipe-*.whl"))
    assert len(wheels) == 1
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert "twisted/plugins/hoodypipe_plugin.py" in names
    assert "hoodypipe/py.typed" in names
    assert "hoodypipe/spectators/dashboard.html" in names
    assert "hoodypipe/web/sendpage.html" in names
    assert not any(n.endswith("dropin.cache") for n in names)
    assert "twisted/__init__.py" not in names
    assert "twisted/plugins/__init__.py" not in names
    assert not any(n.startswith("tests/") for n in names)

    venv = tmp_path / "fresh"
    run(sys.executable, "-m", "venv", str(venv))
    run(str(venv / "bin" / "pip"), "install", "-q", str(wheels[0]))
    listing = run(str(venv / "bin" / "twistd"), "--help", cwd=tmp_path)
    assert "hoodypipe" in listing
    usage = run(str(venv / "bin" / "twistd"), "hoodypipe", "--help", cwd=tmp_path)
    assert "--listen" in usage and "--max-waiting" in usage
