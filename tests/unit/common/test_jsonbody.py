"""The one encoding of the JSON bodies we send."""

from __future__ import annotations

import json

from hoodypipe.common.jsonbody import encode_json


def test_compact_utf8_and_round_trips() -> None:
    body = {"name": "café/✓", "n": 1, "none": None}
    encoded = encode_json(body)
    assert encoded == '{"name":"café/✓","n":1,"none":null}'.encode()
    assert json.loads(encoded) == body
