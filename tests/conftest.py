"""Suite-wide fixtures: loopback-only network, a moto server, canary scanning."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator

import pytest

from tests.support import netguard

# No credentials or config from the developer's machine may leak into tests.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_CONFIG_FILE="/dev/null",
    AWS_SHARED_CREDENTIALS_FILE="/dev/null",
    AWS_EC2_METADATA_DISABLED="true",
    NO_COLOR="1",
)
netguard.install()


@pytest.fixture(autouse=True)
def _logs_to_real_stderr() -> Iterator[None]:
    """Every test starts with logging on the real stderr: a test that pointed it at a stream
    it then closed (capsys, a StringIO) must not make a later test's log line fail."""
    from reconciler.logging import configure

    configure("console", "warning", stream=sys.__stderr__)
    yield


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 (never its 0.0.0.0 default); yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        srv.stop()


@pytest.fixture
def aws_endpoint(moto_server: str) -> Iterator[str]:
    """A clean moto state per test."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")).read()
    from reconciler import calls
    from reconciler.destinations.aws import client as aws_client

    calls.reset()
    aws_client.clear_clients()  # a test may hook a client's events; the next one starts clean
    yield moto_server
    aws_client.clear_clients()


@pytest.fixture
def sm_client(aws_endpoint: str):  # type: ignore[no-untyped-def]
    """A raw boto3 client for out-of-band edits and assertions."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "secretsmanager",
        endpoint_url=aws_endpoint,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


from tests.fixtures_azure import *  # noqa: E402, F403 - Azure Key Vault emulator fixtures
from tests.fixtures_azure_devops import *  # noqa: E402, F403 - Azure DevOps emulator fixtures
from tests.fixtures_kms import *  # noqa: E402, F403 - Hanzo KMS emulator fixtures
from tests.fixtures_oci_vault import *  # noqa: E402, F403 - OCI Vault emulator fixtures
from tests.fixtures_postgres import *  # noqa: E402, F403 - a throwaway PostgreSQL cluster
from tests.fixtures_windmill import *  # noqa: E402, F403 - Windmill emulator fixtures
from tests.fixtures_workspace import *  # noqa: E402, F403 - the common workspace and its daemons
