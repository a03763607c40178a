"""``hoodypipe watch`` and receipts: the sha256 printed, ``--expect-sha256``
checked, as a user runs the command against a feed on loopback."""

from __future__ import annotations

import hashlib

import pytest
import pytest_twisted

from tests.kit.cli import cli
from tests.kit.watchfeed import Script, Serve, done, state

DIGEST = hashlib.sha256(b"the bytes that left").hexdigest()
OTHER = hashlib.sha256(b"something else").hexdigest()


@pytest_twisted.ensureDeferred
async def test_the_sha256_is_printed_after_the_summary(serve: Serve) -> None:
    feed, url = serve([Script((state(1, "streaming"), done(2, sha256=DIGEST)))])
    finished = await cli("watch", url)
    assert finished.returncode == 0, finished.stderr
    lines = finished.stdout.splitlines()
    assert lines[-2].startswith("transfer demo complete")
    assert lines[-1] == f"sha256: {DIGEST}"


@pytest_twisted.ensureDeferred
async def test_no_sha256_line_without_a_receipt(serve: Serve) -> None:
    feed, url = serve([Script((state(1, "streaming"), done(2)))])
    finished = await cli("watch", url)
    assert finished.returncode == 0
    assert "sha256" not in finished.stdout


@pytest.mark.parametrize("given", [DIGEST, DIGEST.upper()])
@pytest_twisted.ensureDeferred
async def test_the_expected_sha256_exits_0(serve: Serve, given: str) -> None:
    feed, url = serve([Script((state(1, "streaming"), done(2, sha256=DIGEST)))])
    finished = await cli("watch", url, "--expect-sha256", given)
    assert finished.returncode == 0, finished.stderr
    assert finished.stderr == ""


@pytest_twisted.ensureDeferred
async def test_a_different_sha256_exits_1_and_says_both(serve: Serve) -> None:
    feed, url = serve([Script((state(1, "streaming"), done(2, sha256=DIGEST)))])
    finished = await cli("watch", url, "--expect-sha256", OTHER, "--json")
    assert finished.returncode == 1
    assert f"sha256 mismatch: expected {OTHER}, the server hashed {DIGEST}" in finished.stderr


@pytest_twisted.ensureDeferred
async def test_a_transfer_without_a_receipt_cannot_match(serve: Serve) -> None:
    feed, url = serve([Script((state(1, "streaming"), done(2)))])
    finished = await cli("watch", url, "--expect-sha256", DIGEST)
    assert finished.returncode == 1
    assert "no sha256 to check" in finished.stderr


@pytest.mark.parametrize("bad", ["abc", DIGEST + "0", "g" * 64])
@pytest_twisted.ensureDeferred
async def test_a_malformed_expected_sha256_is_a_usage_error(bad: str) -> None:
    finished = await cli("watch", "http://127.0.0.1:9/x", "--expect-sha256", bad)
    assert finished.returncode == 2
    assert "64 hexadecimal digits" in finished.stderr
