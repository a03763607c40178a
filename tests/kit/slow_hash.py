"""
twistd with hoodypipe's ``?sha256`` worker slowed to a given rate, for the
test that a hasher which falls behind holds the sender back. Only tests use
it; nothing in the server knows about it:

    python -m tests.kit.slow_hash BYTES_PER_SECOND /path/to/twistd ARGS...

(``running_service(..., launcher=slow_hash.launcher(rate))``.)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from hoodypipe.bytepath import hasher
from hoodypipe.bytepath.hasher import Digest, Piece


def launcher(bytes_per_second: float) -> list[str]:
    return [sys.executable, "-m", "tests.kit.slow_hash", str(bytes_per_second)]


def slowed(
    bytes_per_second: float, update: Callable[[Digest, list[Piece]], None]
) -> Callable[[Digest, list[Piece]], None]:
    """``update`` that first takes as long as hashing at that rate would."""

    def slow_update_all(digest: Digest, pieces: list[Piece]) -> None:
        time.sleep(sum(len(piece) for piece in pieces) / bytes_per_second)
        update(digest, pieces)

    return slow_update_all


def main() -> None:
    rate, twistd = float(sys.argv[1]), sys.argv[2]
    hasher.update_all = slowed(rate, hasher.update_all)
    sys.argv = [twistd, *sys.argv[3:]]
    from twisted.scripts.twistd import run

    run()


if __name__ == "__main__":
    main()
