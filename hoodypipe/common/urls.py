"""
Where pipes live under the API prefix: the server names its pipes'
``?progress`` URLs with it (``--public-url`` + prefix + name), and
``hoodypipe watch`` strips it to show a pipe's name.
"""

from __future__ import annotations

#: Every pipe ``NAME`` is also served at ``PIPE_PREFIX + NAME``.
PIPE_PREFIX = "/api/v1/pipe/"
