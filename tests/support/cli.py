"""Drive the CLI in-process, as a user would, capturing everything it prints."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from reconciler.cli import main
from tests.support.canary import find_leaks


@dataclass
class Result:
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


class Workspace:
    """A spec directory, a file source and a state directory in a temp dir.

    Every run's output is kept so a test can scan the whole session for canaries.
    """

    def __init__(self, root: Path, aws_endpoint: str) -> None:
        self.root = root
        self.specs = root / "specs"
        self.specs.mkdir()
        self.state = root / "state"
        self.secrets_file = root / "secrets.yaml"
        self.aws_endpoint = aws_endpoint
        self.outputs: list[str] = []
        self.write_connections()
        self.set_secrets({})

    def write_connections(self, endpoint: str | None = None, **aws: object) -> None:
        """The file source and the AWS connection (at ``endpoint``, moto unless given; ``aws``:
        more of its settings, e.g. ``maxAttempts=1`` behind a fault proxy)."""
        self.write_spec(
            "connections.yaml",
            [
                {"kind": "Connection", "name": "local", "app": "file", "path": "../secrets.yaml"},
                {
                    "kind": "Connection",
                    "name": "aws",
                    "app": "aws",
                    "endpoint": endpoint or self.aws_endpoint,
                    "region": "us-east-1",
                    **aws,
                    "credentials": {
                        "method": "access-key",
                        "accessKeyId": {"env": "AWS_ACCESS_KEY_ID"},
                        "secretAccessKey": {"env": "AWS_SECRET_ACCESS_KEY"},
                    },
                },
            ],
        )

    def write_spec(self, name: str, docs: list[dict[str, object]]) -> Path:
        p = self.specs / name
        p.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        return p

    def sync(self, name: str = "app", **overrides: object) -> dict[str, object]:
        doc: dict[str, object] = {
            "kind": "SecretSync",
            "name": name,
            "source": "local",
            "environment": "dev",
            "secretPath": "/app",
            "destination": "aws-secrets-manager",
            "connection": "aws",
            "destinationConfig": {"region": "us-east-1", "mappingBehavior": "one-to-one"},
            "syncOptions": {"initialSyncBehavior": "overwrite-destination", "keySchema": "app/{{secretKey}}"},
        }
        for k, v in overrides.items():
            if isinstance(v, dict) and isinstance(doc.get(k), dict):
                merged = dict(doc[k])  # type: ignore[arg-type]
                merged.update(v)
                doc[k] = merged
            else:
                doc[k] = v
        return doc

    def set_secrets(self, secrets: dict[str, object], environment: str = "dev", path: str = "/app") -> None:
        data = yaml.safe_load(self.secrets_file.read_text()) if self.secrets_file.exists() else None
        data = data or {}
        data.setdefault(environment, {})[path] = secrets
        self.secrets_file.write_text(yaml.safe_dump(data, sort_keys=False))

    def run(self, *args: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        argv = list(args)
        if argv and argv[0] in ("plan", "apply", "validate", "import", "remove"):
            argv = [*argv, "--state-dir", str(self.state)]
            if argv[0] in ("plan", "apply", "validate") and not any(a == str(self.specs) for a in argv):
                argv.insert(1, str(self.specs))
            elif argv[0] in ("import", "remove"):
                argv.insert(2, str(self.specs))
        elif argv and argv[0] in ("status", "trigger") and "--state-dir" not in argv:
            argv = [*argv, "--state-dir", str(self.state)]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        r = Result(code, out.getvalue(), err.getvalue())
        self.outputs += [r.out, r.err]
        # an internal error is a bug, whatever the exit code a test expects
        assert "internal error" not in r.err and "Traceback" not in r.out + r.err, str(r)
        return r

    def leaks(self) -> list[str]:
        """Canary forms found in any output so far or in any file of the state directory."""
        from tests.support.canary import scan_tree

        found = find_leaks(self.outputs)
        if self.state.exists():
            found += scan_tree(self.state)
        return found


def apply_converges(ws: Workspace, kind: str, writes: set[str], *, source_empty: bool) -> bool:
    """Apply, then prove convergence: the plan is empty and a second apply makes no write
    call. False when the apply was refused because the source went empty after holding
    secrets (on purpose: that never deletes)."""
    import json

    from reconciler import calls

    r = ws.run("apply")
    refused = source_empty and r.code == 1
    assert r.code == 0 or refused, str(r)
    if refused:
        return False
    r = ws.run("plan", "--detailed-exitcode", "--json")
    assert r.code == 0, str(r)
    assert all(not s["changes"] for s in json.loads(r.out)["syncs"])
    calls.reset()
    assert ws.run("apply").code == 0
    assert not writes & set(calls.by_call(kind)), calls.snapshot()
    return True


def plan_json(ws: Workspace, *extra: str) -> dict[str, Any]:
    """``plan --json`` through the CLI; exit 0 or 2 (changes pending), anything else fails."""
    import json

    r = ws.run("plan", "--json", *extra)
    assert r.code in (0, 2), str(r)
    return json.loads(r.out)  # type: ignore[no-any-return]


def steps(plan: dict[str, Any], sync: str = "app") -> list[tuple[str, str]]:
    """(action, key) of one sync's changes, in plan order."""
    s = next(s for s in plan["syncs"] if s["name"] == sync)
    return [(c["action"], c["key"]) for c in s["changes"]]
