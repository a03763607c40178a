"""
Outbound notifications: what the server (or ``hoodypipe watch``) tells other
systems when a transfer ends.

Nothing here sits on the byte path: a finished transfer hands its frozen
result to :class:`~hoodypipe.notify.notifier.Notifier`, which builds the
request bodies and sends them later, on its own, with bounded retries.
"""
