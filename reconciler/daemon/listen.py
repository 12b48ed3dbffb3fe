"""Where the daemon's local API listens: the default and how ``--listen`` reads. Its own
module (no dataclasses, no state) because ``--help`` and ``trigger`` need it too."""

from __future__ import annotations

from reconciler.errors import ConfigError

DEFAULT_LISTEN = "127.0.0.1:9464"


def parse_listen(text: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (``[::1]:9464`` for IPv6); ``off`` or empty turns the server off."""
    text = text.strip()
    if text in ("", "off", "none"):
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--listen {text!r}: expected HOST:PORT, e.g. {DEFAULT_LISTEN}")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)
