"""
What the server and the ``hoodypipe watch`` client both use: the JSON form of
the transfer events and human-readable figures.
"""
