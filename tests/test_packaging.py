"""Packaging metadata setuptools takes without a deprecation warning."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def test_license_is_an_spdx_expression_and_setuptools_can_read_it() -> None:
    data = tomllib.loads(PYPROJECT.read_text())
    # the table form ({text = ...}) is deprecated by setuptools and warns on every build
    assert data["project"]["license"] == "Apache-2.0"
    # setuptools reads the string form from 77 on; an older one would refuse the file
    requires = " ".join(data["build-system"]["requires"])
    m = re.search(r"setuptools>=(\d+)", requires)
    assert m is not None and int(m.group(1)) >= 77, requires


def test_the_executable_is_the_entry_that_python_m_runs() -> None:
    """`reconciler` and `python -m reconciler.cli` start the same way (the tests run the latter)."""
    data = tomllib.loads(PYPROJECT.read_text())
    assert data["project"]["scripts"]["reconciler"] == "reconciler.cli:entry"
    main = (PYPROJECT.parent / "reconciler" / "cli" / "__main__.py").read_text()
    assert "entry()" in main
