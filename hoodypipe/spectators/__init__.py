"""
Spectators: live ``?progress`` feeds, the dashboard and the ``?status`` snapshot.

Everything here reads the transfer state from the outside (observer calls and
``registry.status`` on a timer) and never sits on the byte path.

- ``observer``: who watches which path, event ids, progress timers, the
  linger of a finished transfer and each path's ``lastTransfer``.
- ``resource``: the HTTP side (snapshot, dashboard, event stream; refusals
  raised for the web layer to word and count).
- ``feed``: one spectator's stream, a push producer on its response.
- ``sse``, ``rate``, ``history``, ``dashboard``: framing, the speed meter,
  kept results, the page.
"""

from hoodypipe.spectators.observer import SpectatorObserver
from hoodypipe.spectators.resource import SpectatorResource

__all__ = ["SpectatorObserver", "SpectatorResource"]
