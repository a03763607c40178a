"""
``hoodypipe watch`` and the command line: a client of the SSE feed that shows
a transfer's progress and tells other systems how it ended.

- ``sse``: the event-stream parser (bytes in, events out).
- ``display``: what is shown (live terminal line, plain lines, JSON lines).
- ``watch``: the watch loop (connect, reconnect with Last-Event-ID, stop on done).
- ``outcome``: ``--exec`` and the client-side PagerDuty event.
- ``cli``: the ``hoodypipe`` console script.

It imports nothing from the server's packages; what both sides need is in
``hoodypipe.common``.
"""
