"""
What the server and the ``hoodypipe watch`` client both use: the JSON of
the transfer events and its encoding, human-readable figures, the HTTP
client, delivering a body with retries, the PagerDuty event, and the
parsers of positive numbers on a command line.

The client imports only from here (never from the server's packages), so
it can be reasoned about, and one day shipped, on its own.
"""
