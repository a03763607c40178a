"""
Tell systemd (``Type=notify``) when hoodypipe is ready and when it is stopping.

The protocol is one datagram of ``KEY=VALUE`` lines sent to the ``AF_UNIX``
socket named by ``$NOTIFY_SOCKET`` (a leading ``@`` means Linux's abstract
namespace). Outside systemd the variable is unset and every call does
nothing, so the same code runs in a terminal, in tests and under the unit.
A plain socket is enough; no extra dependency is needed for three messages.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from twisted.application.service import Service
from twisted.logger import Logger


class SystemdNotifier:
    """Sends state lines to the service manager, if there is one."""

    log = Logger()

    def __init__(self, address: str | None) -> None:
        self.address = address or None

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None
    ) -> SystemdNotifier:
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *lines: str) -> bool:
        """Send ``lines`` as one message; True if it was handed to the socket."""
        if self.address is None:
            return False
        target = self.address
        if target.startswith("@"):
            target = "\0" + target[1:]
        message = "\n".join(lines).encode("utf-8")
        try:
            with socket.socket(
                socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
            ) as sock:
                sock.setblocking(False)
                sock.sendto(message, target)
        except OSError as e:
            self.log.warn(
                "could not notify systemd at {address}: {error}",
                address=self.address,
                error=e,
            )
            return False
        return True

    def ready(self, status: str = "Serving") -> bool:
        return self.notify("READY=1", f"STATUS={status}")

    def stopping(self, status: str = "Stopping") -> bool:
        return self.notify("STOPPING=1", f"STATUS={status}")

    def status(self, status: str) -> bool:
        return self.notify(f"STATUS={status}")


class ReadyService(Service):
    """
    Sends ``READY=1`` when started.

    twistd binds every listener in ``privilegedStartService`` before any
    ``startService`` runs, so a ``ReadyService`` that is a child of the root
    service reports readiness only once the ports are open.
    """

    def __init__(self, notifier: SystemdNotifier) -> None:
        self.notifier = notifier

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call, unused-ignore]
        self.notifier.ready()
