"""Properties of the whole loop (source file -> engine -> moto), not just the planner:
whatever the source and the destination looked like, after one apply the next plan is
empty, and a second apply writes nothing; keys outside the sync's scope never change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.cli import Workspace, apply_converges

KEYS = st.sampled_from(["A", "B", "C", "D_1", "E-2"])
VALUES = st.sampled_from(["v1", "v2", "v3", "a much longer value with spaces", "ünïcödé"])
SOURCES = st.dictionaries(KEYS, VALUES, max_size=5)
OUTSIDE = {"other/A": "keep-1", "app-A": "keep-2", "app/nested/A": "keep-3"}
WRITES = {"CreateSecret", "PutSecretValue", "UpdateSecret", "DeleteSecret", "RestoreSecret",
          "TagResource", "UntagResource"}


@st.composite
def edits(draw: st.DrawFn) -> list[tuple[str, str, str]]:
    """Out-of-band edits at the destination: (op, key, value)."""
    ops = st.tuples(st.sampled_from(["put", "delete", "create"]), KEYS, VALUES)
    return draw(st.lists(ops, max_size=4))


def _oob(sm: Any, op: str, key: str, value: str) -> None:
    name = f"app/{key}"
    try:
        if op == "put":
            sm.put_secret_value(SecretId=name, SecretString=value)
        elif op == "delete":
            sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
        else:
            sm.create_secret(Name=name, SecretString=value)
    except sm.exceptions.ClientError:
        pass  # the edit did not apply (missing, exists, scheduled): fine, it is noise


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=SOURCES, second=SOURCES, noise=edits())
def test_apply_converges_and_never_touches_outside_scope(
    tmp_path_factory: Any, aws_endpoint: str, sm_client: Any, first: dict[str, str], second: dict[str, str],
    noise: list[tuple[str, str, str]],
) -> None:
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{aws_endpoint}/moto-api/reset", method="POST")).read()
    for name, value in OUTSIDE.items():
        sm_client.create_secret(Name=name, SecretString=value)
    ws = Workspace(Path(tmp_path_factory.mktemp("ws")), aws_endpoint)
    ws.write_spec("app.yaml", [ws.sync(reconcile={"maxDeletes": "100%"})])

    for source, edits_ in ((first, []), (second, noise)):
        for e in edits_:
            _oob(sm_client, *e)
        ws.set_secrets(dict(source))
        if not apply_converges(ws, "aws-secrets-manager", WRITES, source_empty=not source):
            continue
        live = {s["Name"]: sm_client.get_secret_value(SecretId=s["Name"])["SecretString"]
                for s in sm_client.list_secrets(MaxResults=100)["SecretList"]}
        assert {k: v for k, v in live.items() if k.startswith("app/") and "/" not in k[4:]} == {
            f"app/{k}": v for k, v in source.items()
        }
    for name, value in OUTSIDE.items():
        assert sm_client.get_secret_value(SecretId=name)["SecretString"] == value
    assert ws.leaks() == []
