"""
Spectators: live ``?progress`` feeds, the dashboard and the ``?status`` snapshot.

Everything here reads the transfer state from the outside (observer calls and
``registry.status`` on a timer) and never sits on the byte path.
"""

from hoodypipe.spectators.hub import SpectatorHub

__all__ = ["SpectatorHub"]
