import socket

import pytest

from tests.support.netguard import NetworkGuardError


def test_non_loopback_connect_fails_fast() -> None:
    s = socket.socket()
    with pytest.raises(NetworkGuardError):
        s.connect(("10.1.2.3", 443))
    s.close()


def test_dns_for_other_hosts_fails_fast() -> None:
    with pytest.raises(NetworkGuardError):
        socket.getaddrinfo("secretsmanager.us-east-1.amazonaws.com", 443)
