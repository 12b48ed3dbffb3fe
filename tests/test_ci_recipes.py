"""The CI recipes stay in step with the CLI: every `reconciler` command in the example
workflow parses, the plan job saves what the apply job applies, and the pre-commit hook runs
`reconciler validate`."""

from __future__ import annotations

import contextlib
import io
import shlex
from pathlib import Path
from typing import Any

import yaml

from reconciler.cli import main
from reconciler.cli.parser import build_parser as _parser

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "examples" / "ci" / "reconciler.yml"


def _runs(doc: Any) -> list[str]:
    steps = [s for job in doc["jobs"].values() for s in job["steps"]]
    return [s["run"] for s in steps if "run" in s]


def _commands() -> list[list[str]]:
    doc = yaml.safe_load(WORKFLOW.read_text())
    out = []
    for script in _runs(doc):
        for line in script.replace("\\\n", " ").splitlines():
            line = line.split(">")[0].strip()
            if line.startswith("reconciler "):
                out.append([a.replace("$SPECS", "specs") for a in shlex.split(line)][1:])
    return out


def test_workflow_commands_parse() -> None:
    commands = _commands()
    assert {c[0] for c in commands} == {"validate", "plan", "apply"}
    for argv in commands:
        _parser().parse_args(argv)  # SystemExit on any flag the CLI does not have


def test_plan_job_saves_what_apply_job_applies() -> None:
    plan = next(c for c in _commands() if c[0] == "plan")
    apply = next(c for c in _commands() if c[0] == "apply")
    args = _parser().parse_args(plan)
    assert args.format == "markdown" and args.out is not None and args.detailed_exitcode
    saved = _parser().parse_args(apply).plan_file
    assert saved is not None and saved.name == args.out.name
    text = WORKFLOW.read_text()
    assert "name: reconciler-plan" in text and "--name reconciler-plan" in text
    assert "fingerprint.key" in text and "RECONCILER_FINGERPRINT_KEY" in text


def test_pre_commit_hook_runs_validate() -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "reconciler-validate" and hook["entry"] == "reconciler validate"
    assert hook["pass_filenames"] is False and hook["language"] == "python"
    argv = [*shlex.split(hook["entry"])[1:], str(ROOT / "examples" / "syncs")]
    out, err = io.StringIO(), io.StringIO()  # never capsys: logging keeps the stream it was configured with
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert main(argv) == 0
    assert "Valid:" in out.getvalue()
