"""Loopback-only network guard: anything that reaches for another address fails at once."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo
_ALLOWED_NAMES = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}


class NetworkGuardError(RuntimeError):
    pass


def _check_host(host: Any) -> None:
    if host is None:
        return
    if isinstance(host, bytes):
        host = host.decode()
    host = str(host)
    if host in _ALLOWED_NAMES:
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise NetworkGuardError(f"network guard: tests may only reach loopback, not {host!r}")


def _addr_host(address: Any) -> Any:
    if isinstance(address, tuple) and address:
        return address[0]
    return None  # AF_UNIX paths are fine


def _connect(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check_host(_addr_host(address))
    return _real_connect(self, address)


def _connect_ex(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check_host(_addr_host(address))
    return _real_connect_ex(self, address)


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    _check_host(host)
    return _real_getaddrinfo(host, *args, **kwargs)


def install() -> None:
    socket.socket.connect = _connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _getaddrinfo
