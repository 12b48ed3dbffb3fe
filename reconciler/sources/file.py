"""The local file source: one YAML file of ``{environment: {secretPath: {KEY: value}}}``.

A value is a scalar or ``{value, comment, metadata}``. Errors name file and line but never
quote the file: PyYAML's own messages include a snippet of the offending line, which here
would be a secret.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from reconciler.model import SecretValue, SourceSecret, frozen_map
from reconciler.sources.base import Folder, content_token
from reconciler.sources.catalog import SourceConnection
from reconciler.sources.errors import SourceError

_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.")
_ENTRY_FIELDS = frozenset({"value", "comment", "metadata"})


def normalize_path(secret_path: str) -> str:
    p = "/" + secret_path.strip().strip("/")
    return p


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _scalar_text(node: yaml.Node, file: Path, what: str) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise SourceError(f"{file}:{_line(node)}: {what} must be a single value")
    if node.tag == "tag:yaml.org,2002:null":
        raise SourceError(f"{file}:{_line(node)}: {what} is empty (null); quote an empty string as \"\"")
    # scalars keep their text as written: `port: 05432` stays "05432", `on: yes` stays "yes"
    return str(node.value)


def _mapping(node: yaml.Node, file: Path, what: str) -> list[tuple[yaml.Node, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        raise SourceError(f"{file}:{_line(node)}: {what} must be a mapping")
    return list(node.value)


class FileSource:
    """Reads (and, for imports, writes) one local secrets file."""

    writable = True

    def __init__(self, path: Path) -> None:
        self.path = path

    def _compose(self) -> yaml.Node | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError as e:
            raise SourceError(f"{self.path}: secrets file not found") from e
        except OSError as e:
            raise SourceError(f"{self.path}: cannot read secrets file ({e.strerror})") from e
        except UnicodeDecodeError as e:
            raise SourceError(f"{self.path}: secrets file is not UTF-8 text") from e
        try:
            return yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            line = mark.line + 1 if mark else 0
            raise SourceError(f"{self.path}:{line}: not valid YAML ({e.problem or 'syntax error'})") from None
        except yaml.YAMLError:
            raise SourceError(f"{self.path}: not valid YAML") from None

    def read(self, folder: Folder) -> list[SourceSecret]:
        """Secrets of one environment and folder; a missing folder is an empty folder."""
        return self._read(folder.environment, folder.secret_path)

    def change_token(self, folder: Folder) -> str:
        return content_token(self.read(folder))

    def close(self) -> None:
        return None

    def _read(self, environment: str, secret_path: str) -> list[SourceSecret]:
        root = self._compose()
        if root is None:
            return []
        want = normalize_path(secret_path)
        folder: yaml.Node | None = None
        for env_node, env_value in _mapping(root, self.path, "the top level (environments)"):
            if _scalar_text(env_node, self.path, "an environment name") != environment:
                continue
            for path_node, path_value in _mapping(env_value, self.path, f"environment {environment!r}"):
                if normalize_path(_scalar_text(path_node, self.path, "a secret path")) == want:
                    folder = path_value
        if folder is None or (isinstance(folder, yaml.ScalarNode) and folder.tag.endswith(":null")):
            return []
        out: dict[str, SourceSecret] = {}
        for key_node, value_node in _mapping(folder, self.path, f"folder {want!r}"):
            key = _scalar_text(key_node, self.path, "a secret key")
            if not key or not set(key) <= _KEY_CHARS:
                raise SourceError(
                    f"{self.path}:{_line(key_node)}: secret key {key!r} may only contain letters, digits, '_', '-', '.'"
                )
            if key in out:
                raise SourceError(f"{self.path}:{_line(key_node)}: secret key {key!r} appears twice")
            out[key] = self._entry(key, value_node)
        return list(out.values())

    def _entry(self, key: str, node: yaml.Node) -> SourceSecret:
        if isinstance(node, yaml.ScalarNode):
            return SourceSecret(key, SecretValue(_scalar_text(node, self.path, f"the value of {key}")))
        fields = dict((_scalar_text(k, self.path, "a field name"), v) for k, v in _mapping(node, self.path, key))
        unknown = set(fields) - _ENTRY_FIELDS
        if unknown:
            raise SourceError(
                f"{self.path}:{_line(node)}: {key}: unknown field(s) {sorted(unknown)}; "
                "expected value, comment, metadata"
            )
        if "value" not in fields:
            raise SourceError(f"{self.path}:{_line(node)}: {key}: missing field 'value'")
        value = _scalar_text(fields["value"], self.path, f"the value of {key}")
        comment = _scalar_text(fields["comment"], self.path, f"{key}.comment") if "comment" in fields else ""
        metadata: dict[str, str] = {}
        if "metadata" in fields:
            for mk, mv in _mapping(fields["metadata"], self.path, f"{key}.metadata"):
                metadata[_scalar_text(mk, self.path, "a metadata key")] = _scalar_text(
                    mv, self.path, f"{key}.metadata value"
                )
        return SourceSecret(key, SecretValue(value), comment, frozen_map(metadata))

    def write(self, folder: Folder, updates: Mapping[str, SecretValue]) -> None:
        """Create or overwrite keys in one folder, atomically (temp file + rename)."""
        if not updates:
            return
        environment, secret_path = folder.environment, folder.secret_path
        # validate the current layout first so a broken file is never overwritten
        self._read(environment, secret_path)
        try:
            data: Any = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            data = {}
        want = normalize_path(secret_path)
        env = data.setdefault(environment, {})
        folder_key = next((k for k in env if normalize_path(str(k)) == want), want)
        entries = env.get(folder_key) or {}
        env[folder_key] = entries
        for key, value in updates.items():
            current = entries.get(key)
            if isinstance(current, dict):
                current["value"] = value.reveal()
            else:
                entries[key] = value.reveal()
        mode = self.path.stat().st_mode & 0o777 if self.path.exists() else 0o600
        fd, tmp = tempfile.mkstemp(prefix=".reconciler-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                yaml.safe_dump(data, f, sort_keys=False, allow_unicode=True, default_flow_style=False)
            os.chmod(tmp, mode)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def open_connection(conn: SourceConnection) -> FileSource:
    """The catalog's opener: the file the loader resolved from the Connection's ``path``."""
    if conn.path is None:
        raise SourceError(f"connection {conn.name}: no path")
    return FileSource(conn.path)
