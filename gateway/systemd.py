"""sd_notify(3) without a dependency: READY, STOPPING, WATCHDOG and STATUS to systemd."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import structlog

log = structlog.get_logger("gateway.daemon")


class SystemdNotifier:
    """sd_notify(3) without a dependency: one datagram per state change to $NOTIFY_SOCKET.

    A socket name starting with `@` is in the abstract namespace. Without
    NOTIFY_SOCKET (not under systemd, or `Type=simple`) every call does nothing.
    """

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self.address = address or None
        self.watchdog_usec = watchdog_usec

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> SystemdNotifier:
        usec_text = environ.get("WATCHDOG_USEC", "")
        pid_text = environ.get("WATCHDOG_PID", "")
        usec = int(usec_text) if usec_text.isdigit() and int(usec_text) > 0 else None
        if pid_text and pid_text != str(os.getpid()):
            usec = None  # the watchdog is meant for another process
        return cls(environ.get("NOTIFY_SOCKET"), usec)

    @property
    def watchdog_interval_seconds(self) -> float | None:
        """Ping twice per watchdog period, as sd_watchdog_enabled(3) recommends."""
        if self.address is None or self.watchdog_usec is None:
            return None
        return self.watchdog_usec / 2_000_000

    def send(self, *assignments: str) -> bool:
        if self.address is None:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto("\n".join(assignments).encode("utf-8"), target)
        except OSError as exc:
            log.warning("systemd.notify_failed", socket=self.address, error=str(exc))
            return False
        return True


