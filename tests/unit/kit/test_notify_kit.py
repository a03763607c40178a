"""The notification kit itself (tests/kit/notify.py), in memory."""

from __future__ import annotations

from twisted.internet.task import Clock

from tests.kit.notify import RecordingReceiver, stub_client


def test_receiver_plays_its_script_then_repeats_the_last_answer() -> None:
    clock = Clock()
    receiver = RecordingReceiver([500, (429, {"Retry-After": "3"}), 202], clock.seconds)
    client, stub = stub_client(receiver)
    codes: list[tuple[int, list[str] | None]] = []
    for _ in range(4):
        d = client.request("POST", "http://r/x", data=b"{}")
        d.addCallback(lambda r: codes.append(
            (r.code, r.headers.getRawHeaders("retry-after"))))
        clock.advance(1)
    stub.flush()
    assert codes == [(500, None), (429, ["3"]), (202, None), (202, None)]
    assert [r.at for r in receiver.received] == [0, 1, 2, 3]
    assert receiver.received[0].body == b"{}"
