"""
Outbound notifications of the server: what it tells other systems when a
transfer ends (``--on-done`` webhooks, the PagerDuty event).

Nothing here sits on the byte path: a finished transfer hands its frozen
result to :class:`~hoodypipe.notify.notifier.Notifier`, which builds the
request bodies and sends them later, on its own, with bounded retries.
Sending a body with retries, and the PagerDuty event itself, are in
``hoodypipe.common``: ``hoodypipe watch`` sends the same event from a
laptop.
"""
