"""
The byte path: a send's body from the sender's socket to the receivers'
sockets, with Twisted producers and consumers for backpressure.

This is the hottest code of the relay: nothing here logs, allocates or does
work per read that it can avoid, and spectators never reach in here.

- ``site``/``channel``: the connection (cap, HTTP/1.1 only, request deadline,
  the channel's own refusals, half-close).
- ``request``/``body``: a send's request and its body, streamed as it
  arrives; ``guard`` checks at startup the Twisted internals they lean on.
- ``relay``/``chunked``: one body fanned out to its receivers' sockets.
- ``sockets``/``dispatch``: below Twisted's API, and checked when the service
  starts: a read sent to a receiver's socket in the turn it arrived, and each
  ready socket handed to its transport without the legacy log context.
"""
