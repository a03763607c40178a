"""
``hoodypipe watch`` and the command line: a client of the SSE feed that shows
a transfer's progress and tells other systems how it ended.
"""
