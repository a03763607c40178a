"""
Tests against real things: ``twistd hoodypipe`` on loopback, curl, headless
chromium, nginx, systemd's tools, pip. Subfolders mirror the ``hoodypipe``
package; ``kit/`` tests the curl kit of ``tests/kit/ops.py``.
"""
