"""
Boolean query values (``?download``, ``?progress``, ``?video``, ``?sha256``).

Clients of the Hoody pipe kit write these as ``true``/``false``, ``yes``/``no``
or ``1``/``0``, and often bare (``?download``). Only the three "off" words turn
a flag off; anything else, a bare key included, turns it on, so a typo never
silently turns a receiver into something else.
"""

from __future__ import annotations

OFF = frozenset({b"false", b"no", b"0"})


def flag(args: dict[bytes, list[bytes]], key: bytes) -> bool | None:
    """``None`` when ``key`` is absent, else whether its (last) value means on."""
    values = args.get(key)
    if values is None:
        return None
    return values[-1].lower() not in OFF


def is_on(args: dict[bytes, list[bytes]], key: bytes) -> bool:
    """Whether ``key`` is present and not switched off."""
    return flag(args, key) is True
