"""The Dockerfile, checked statically (no Docker engine on these machines), and its
HEALTHCHECK command run for real against a daemon."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.support.cli import Workspace
from tests.support.daemon import DaemonHarness

ROOT = Path(__file__).resolve().parents[1]


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    ins = instructions()
    last_from = max(i for i, (op, _) in enumerate(ins) if op == "FROM")
    return ins[last_from:]


def env() -> dict[str, str]:
    out: dict[str, str] = {}
    for op, rest in final_stage():
        if op == "ENV":
            for item in shlex.split(rest):
                k, _, v = item.partition("=")
                out[k] = v
    return out


def test_multi_stage_on_a_pinned_slim_base() -> None:
    ins = instructions()
    args = {k: v for op, rest in ins if op == "ARG" and "=" in rest for k, v in [rest.split("=", 1)]}
    froms = [rest.split()[0] for op, rest in ins if op == "FROM"]
    assert len(froms) == 2, "build stage + runtime stage"
    for image in froms:
        image = args.get(image.strip("${}"), image)
        assert ":" in image and not image.endswith(":latest") and "slim" in image, image
    assert any(op == "COPY" and "--from=build" in rest for op, rest in final_stage())
    assert not any(op == "ADD" for op, _ in ins), "COPY only: no remote ADD"


def test_runs_as_a_non_root_user() -> None:
    users = [rest for op, rest in final_stage() if op == "USER"]
    assert users, "USER is set"
    uid = users[-1].split(":")[0]
    assert uid not in ("root", "0") and uid.isdigit() and int(uid) >= 1000, uid


def test_entrypoint_volumes_and_environment() -> None:
    stage = final_stage()
    entry = [json.loads(rest) for op, rest in stage if op == "ENTRYPOINT"]
    assert entry == [["reconciler", "run"]]
    volumes = [v for op, rest in stage if op == "VOLUME" for v in json.loads(rest)]
    assert {"/specs", "/state"} <= set(volumes)
    e = env()
    assert e["RECONCILER_SPECS"] == "/specs" and e["RECONCILER_STATE_DIR"] == "/state"
    port = e["RECONCILER_LISTEN"].rpartition(":")[2]
    assert [rest for op, rest in stage if op == "EXPOSE"] == [port]
    cmd = [json.loads(rest) for op, rest in stage if op == "CMD"][-1]
    timeout = float(cmd[cmd.index("--shutdown-timeout") + 1])
    assert timeout < 10, "inside Docker's default 10 s stop grace period"


def _healthcheck() -> list[str]:
    hc = [rest for op, rest in final_stage() if op == "HEALTHCHECK"]
    assert len(hc) == 1
    return json.loads(hc[0][hc[0].index("CMD") + 3:].strip())  # type: ignore[no-any-return]


def test_copy_sources_exist_and_survive_dockerignore() -> None:
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]

    def included(path: str) -> bool:
        keep = True
        for p in patterns:
            neg = p.startswith("!")
            pat = p.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(path.split("/")[0], pat):
                keep = neg
        return keep

    for op, rest in instructions():
        if op == "COPY" and "--from" not in rest:
            *sources, _dest = rest.split()
            for src in sources:
                assert (ROOT / src).exists(), src
                assert included(src.rstrip("/")), f"{src} is excluded by .dockerignore"
    for secret_or_bulk in (".venv", ".git", "tests", ".demo", "state.db"):
        assert not included(secret_or_bulk), secret_or_bulk


def test_healthcheck_command_reports_a_live_daemon(tmp_path: Path) -> None:
    cmd = _healthcheck()
    assert cmd[0] == "python" and "/healthz" in cmd[-1]
    ws = Workspace(tmp_path, "http://127.0.0.1:9")
    h = DaemonHarness(ws).start()
    try:
        port = h.daemon.server.port
        code = cmd[-1].replace("127.0.0.1:9464", f"127.0.0.1:{port}")
        assert subprocess.run([sys.executable, "-c", code], timeout=30).returncode == 0
    finally:
        assert h.stop() == 0
    assert subprocess.run([sys.executable, "-c", code], timeout=30, capture_output=True).returncode != 0
