"""
The start of a receiver's response: status, the sender's headers, this
receiver's own Content-Disposition and the transfer id, then the headers are
sent.

Forwarded headers may repeat (two ``X-Piping`` values are two headers, in
order), so only the first value of a name replaces what is set; later ones
are added beside it.
"""

from __future__ import annotations

from twisted.web.server import Request

from hoodypipe.bytepath.multipart import PartHead
from hoodypipe.web import disposition
from hoodypipe.web.headers import TRANSFER_ID, sanitise_content_type

Headers = list[tuple[bytes, bytes]]
TEXT_FIELD_TYPE = b"text/plain; charset=utf-8"


def answer_receiver(
    request: Request, pipe_name: str, transfer_id: str, headers: Headers,
    offered: disposition.Offered | None,
) -> None:
    """Send a receiver its 200 and headers; the body follows from the relay."""
    request.setResponseCode(200)
    seen: set[bytes] = set()
    for name, value in headers:
        key = name.lower()
        if key in seen:
            request.responseHeaders.addRawHeader(name, value)
        else:
            seen.add(key)
            request.setHeader(name, value)
    request.setHeader(TRANSFER_ID, transfer_id.encode())
    chosen = disposition.for_receiver(request.args, offered, pipe_name)
    if chosen is not None:
        request.setHeader(b"Content-Disposition", chosen)
    request.write(b"")


def part_headers(sender: Headers, head: PartHead) -> Headers:
    """A multipart send's receiver headers: the sender's, with the forwarded
    part's type and no Content-Length (the part's length is not known)."""
    kept = [(n, v) for n, v in sender if n.lower() not in (b"content-type", b"content-length")]
    return [(b"Content-Type", _part_type(head)), *kept]


def part_offer(head: PartHead) -> disposition.Offered | None:
    """A file part is offered as an attachment under its filename; text is not."""
    return None if head.text else disposition.Offered(filename=head.filename)


def _part_type(head: PartHead) -> bytes:
    # The same sanitiser as a sender's own Content-Type (secweb is giving it
    # the RFC 9110 grammar; this call then follows without change).
    if head.text:
        return TEXT_FIELD_TYPE
    value = head.content_type
    if value is None or not value.isascii() or not value.isprintable():
        return sanitise_content_type(None)
    return sanitise_content_type(value.encode("ascii"))
