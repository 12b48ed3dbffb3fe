"""The systemd notify protocol: one datagram per message to ``$NOTIFY_SOCKET``.

No dependency needed: READY=1, STATUS=..., WATCHDOG=1, RELOADING=1, STOPPING=1 are plain
text. Outside systemd (no ``$NOTIFY_SOCKET``) every call is a no-op.
"""

from __future__ import annotations

import os
import socket


class Notifier:
    def __init__(self, address: str | None = None) -> None:
        raw = os.environ.get("NOTIFY_SOCKET") if address is None else address
        self.address: str | None = ("\0" + raw[1:]) if raw and raw.startswith("@") else (raw or None)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, **fields: str | int) -> bool:
        """Send ``KEY=value`` lines; False when not under systemd or the socket is gone."""
        if self.address is None:
            return False
        text = "\n".join(f"{k.upper()}={str(v).replace(chr(10), ' ')}" for k, v in fields.items())
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(text.encode("utf-8"), self.address)
        except OSError:
            return False
        return True


def watchdog_interval(env: dict[str, str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WatchdogSec=), or None when not asked for."""
    e = os.environ if env is None else env
    usec = e.get("WATCHDOG_USEC")
    pid = e.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2_000_000 if value > 0 else None
