"""Issue 14 item 3: a command imports only what it uses (measured as modules, not seconds:
timing tests are flaky; benchmarks/ has the start-up times)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SDKS = ("boto3", "botocore", "azure", "oci", "httpx", "apscheduler", "watchfiles", "prometheus_client", "rich")


def _all_modules(*argv: str) -> set[str]:
    code = ("import sys, json\nfrom reconciler.cli import main\n"
            f"try:\n    main({list(argv)!r})\nexcept SystemExit:\n    pass\n"
            "print(json.dumps(sorted(m for m, v in sys.modules.items() if v is not None)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def _modules(*argv: str) -> set[str]:
    return {m.split(".")[0] for m in _all_modules(*argv)}


def test_help_imports_no_logging_schema_yaml_or_sdk() -> None:
    loaded = _modules("--help")
    heavy = {*SDKS, "structlog", "jsonschema", "yaml", "ssl", "email", "asyncio"}
    assert not loaded & heavy, loaded & heavy


def test_validate_imports_no_sdk_http_client_scheduler_or_rich(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("kind: Connection\nname: local\napp: file\npath: s.yaml\n")
    loaded = _modules("validate", str(tmp_path))
    heavy = {*SDKS, "structlog", "ssl", "email", "asyncio"}
    assert not loaded & heavy, loaded & heavy


def test_validate_defines_no_plan_types_and_loads_no_command_it_does_not_run(tmp_path: Path) -> None:
    """What validation does without: the plan types, the engine, the state, hashing, the
    other commands' modules (each cost start-up time when they were imported eagerly)."""
    (tmp_path / "c.yaml").write_text("kind: Connection\nname: local\napp: file\npath: s.yaml\n")
    loaded = _all_modules("validate", str(tmp_path))
    for module in ("reconciler.changes", "reconciler.engine", "reconciler.planning", "reconciler.state",
                   "reconciler.cli.trigger", "reconciler.sources.webhook", "hashlib", "hmac", "difflib"):
        assert module not in loaded, module


def test_help_loads_no_command_module() -> None:
    loaded = _all_modules("--help")
    assert not {m for m in loaded if m.startswith("reconciler.") and m not in (
        "reconciler.cli", "reconciler.cli.parser")}, loaded
