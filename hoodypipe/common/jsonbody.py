"""
How a JSON body leaves hoodypipe for another system: the type of a JSON
object and its one encoding.

Webhooks, PagerDuty events and the ``--exec`` hook of ``hoodypipe watch``
all send the same bodies; one encoder means a body reads the same whichever
side sent it (compact, UTF-8 rather than ``\\u`` escapes, so a pipe name in
any script survives as written).
"""

from __future__ import annotations

import json
from typing import Any

JSONObject = dict[str, Any]


def encode_json(body: JSONObject) -> bytes:
    """``body`` as compact UTF-8 JSON, ready to POST."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
