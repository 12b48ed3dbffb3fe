"""The local file source: one YAML file of ``{environment: {secretPath: {KEY: value}}}``.

A value is a scalar or ``{value, comment, metadata}``, and it is read as the text written
(``05432`` stays ``05432``). A secrets file holds strings: a tagged value (``!abc`` is a tag
with empty content, not text) or an alias is an error, never an empty value that would
plan a delete. Errors name file and line and never quote the file: the text would be a secret.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from yaml.composer import ComposerError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode

from reconciler import atomicfile
from reconciler.model import ConnectionInfo, SecretValue, SourceSecret, frozen_map
from reconciler.sources.base import Folder, content_token
from reconciler.sources.errors import SourceError
from reconciler.sources.fileedit import Entries, TextEdit, key_text, quote
from reconciler.yamlsafe import SECRETS_MAX_BYTES, GuardedLoader, InputError, describe, os_reason, read_regular

_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.")
_ENTRY_FIELDS = frozenset({"value", "comment", "metadata"})
#: no destination takes a longer name (AWS: 512, with the key schema's prefix)
MAX_KEY_LENGTH = 512
_STR_TAG = "tag:yaml.org,2002:str"
_NULL_TAG = "tag:yaml.org,2002:null"


def normalize_path(secret_path: str) -> str:
    p = "/" + secret_path.strip().strip("/")
    return p


def shown(key: str) -> str:
    """A key as put in a message: whole when short, else its start and its length."""
    return repr(key) if len(key) <= 60 else f"'{key[:40]}…' ({len(key)} characters)"


class _Loader(GuardedLoader):
    """Refuses aliases, and remembers which nodes carry an explicit tag (``!x``, ``!!int``)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.tagged: set[int] = set()

    def compose_node(self, parent: Node | None, index: object) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, AliasEvent):
            raise ComposerError(None, None, "a value starting with '*' is a YAML alias, and a secrets file takes "
                                "none: write the value, quoted", event.start_mark)  # type: ignore[arg-type]
        node = super().compose_node(parent, index)
        if node is not None and getattr(event, "tag", None) not in (None, "!", _STR_TAG, _NULL_TAG):
            self.tagged.add(id(node))
        return node


@dataclass(frozen=True)
class _Parsed:
    text: str
    root: Node | None
    tagged: frozenset[int]
    #: (environment, folder) -> (environment entry, folder entry), filled on first lookup
    index: dict[tuple[str, str], tuple[_Folder | None, _Folder | None]] | None = field(
        default=None, compare=False, hash=False)


#: the last parse of each secrets file, by the digest of its bytes: a thousand syncs reading
#: one file would otherwise parse it a thousand times (and walk every folder to find theirs)
_PARSES: dict[str, tuple[bytes, _Parsed]] = {}
_PARSES_LOCK = threading.Lock()


@dataclass(frozen=True)
class _Folder:
    env_key: Node
    env_value: Node
    key: Node | None = None
    value: Node | None = None


class FileSource:
    """Reads (and, for imports, writes) one local secrets file."""

    writable = True

    def __init__(self, path: Path) -> None:
        self.path = path

    # -- parsing -------------------------------------------------------------------------------
    def _error(self, node: Node, message: str) -> SourceError:
        return SourceError(f"{self.path}:{node.start_mark.line + 1}: {message}")

    def _parse(self, *, missing_ok: bool = False) -> _Parsed:
        try:
            raw = read_regular(self.path, SECRETS_MAX_BYTES)
        except InputError as e:
            if missing_ok and not os.path.lexists(self.path):
                return _Parsed("", None, frozenset())
            raise SourceError(f"{self.path}: secrets file {e}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            line = raw.count(b"\n", 0, e.start) + 1
            raise SourceError(f"{self.path}:{line}: secrets file is not UTF-8 text") from None
        digest = hashlib.sha256(raw).digest()
        key = os.path.realpath(self.path)
        with _PARSES_LOCK:
            cached = _PARSES.get(key)
        if cached is not None and cached[0] == digest:
            return cached[1]
        loader: _Loader | None = None
        try:
            loader = _Loader(text)
            root = loader.get_single_node()
        except yaml.YAMLError as e:
            line, column, problem = describe(e, text)
            raise SourceError(f"{self.path}:{line}: not valid YAML: {problem} (column {column})") from None
        finally:
            if loader is not None:
                loader.dispose()
        parsed = _Parsed(text, root, frozenset(loader.tagged), {})
        with _PARSES_LOCK:
            _PARSES[key] = (digest, parsed)
        return parsed

    def _text(self, parsed: _Parsed, node: Node, what: str) -> str:
        if id(node) in parsed.tagged:
            raise self._error(node, f"{what} has a YAML tag (it starts with '!'); a secrets file holds text: quote it")
        if not isinstance(node, ScalarNode):
            raise self._error(node, f"{what} must be a single value")
        if node.tag == _NULL_TAG:
            raise self._error(node, f'{what} is empty (null); quote an empty string as ""')
        return str(node.value)  # the text as written: `port: 05432` stays "05432", `on: yes` stays "yes"

    def _pairs(self, parsed: _Parsed, node: Node, what: str) -> list[tuple[Node, Node]]:
        if id(node) in parsed.tagged:
            raise self._error(node, f"{what} has a YAML tag (it starts with '!'); remove it")
        if not isinstance(node, MappingNode):
            raise self._error(node, f"{what} must be a mapping")
        return list(node.value)

    def _folders(self, parsed: _Parsed) -> Iterator[_Folder]:
        """Every (environment, folder) of the file; two spellings of one place are an error."""
        if parsed.root is None:
            return
        envs: dict[str, int] = {}
        for env_key, env_value in self._pairs(parsed, parsed.root, "the top level (environments)"):
            env = self._text(parsed, env_key, "an environment name")
            line = env_key.start_mark.line + 1
            if env in envs:
                raise self._error(env_key, f"environment {shown(env)} appears twice (first at line {envs[env]})")
            envs[env] = line
            if isinstance(env_value, ScalarNode) and env_value.tag == _NULL_TAG and id(env_value) not in parsed.tagged:
                yield _Folder(env_key, env_value)
                continue
            paths: dict[str, tuple[str, int]] = {}
            yield _Folder(env_key, env_value)
            for path_key, path_value in self._pairs(parsed, env_value, f"environment {shown(env)}"):
                written = self._text(parsed, path_key, "a secret path")
                path = normalize_path(written)
                if path in paths:
                    first, at = paths[path]
                    raise self._error(path_key, f"secret path {shown(written)} is the same folder as {shown(first)} "
                                      f"(line {at}); merge them into one")
                paths[path] = (written, path_key.start_mark.line + 1)
                yield _Folder(env_key, env_value, path_key, path_value)

    def _find(self, parsed: _Parsed, environment: str, secret_path: str) -> tuple[_Folder | None, _Folder | None]:
        """The environment's entry and the folder's entry (None when absent)."""
        want = normalize_path(secret_path)
        if parsed.index is not None:  # one walk over every folder per parse, then lookups
            if not parsed.index:
                self._index(parsed, parsed.index)
            env_entry = parsed.index.get((environment, ""), (None, None))[0]
            return env_entry, parsed.index.get((environment, want), (env_entry, None))[1]
        env_entry = folder_entry = None
        for f in self._folders(parsed):
            if self._text(parsed, f.env_key, "an environment name") != environment:
                continue
            if f.key is None:
                env_entry = f
            elif normalize_path(self._text(parsed, f.key, "a secret path")) == want:
                folder_entry = f
        return env_entry, folder_entry

    def _index(self, parsed: _Parsed, index: dict[tuple[str, str], tuple[_Folder | None, _Folder | None]]) -> None:
        built: dict[tuple[str, str], tuple[_Folder | None, _Folder | None]] = {}
        for f in self._folders(parsed):
            env = self._text(parsed, f.env_key, "an environment name")
            if f.key is None:
                built[(env, "")] = (f, None)
            else:
                env_entry = built.get((env, ""), (None, None))[0]
                built[(env, normalize_path(self._text(parsed, f.key, "a secret path")))] = (env_entry, f)
        index.update(built)

    def _secrets(self, parsed: _Parsed, folder: Node | None, where: str) -> dict[str, tuple[SourceSecret, Node]]:
        """The folder's secrets, each with the node its value is written in."""
        if folder is None or (isinstance(folder, ScalarNode) and folder.tag == _NULL_TAG
                              and id(folder) not in parsed.tagged):
            return {}
        out: dict[str, tuple[SourceSecret, Node]] = {}
        lines: dict[str, int] = {}
        for key_node, value_node in self._pairs(parsed, folder, f"folder {where!r}"):
            key = self._text(parsed, key_node, "a secret key")
            if len(key) > MAX_KEY_LENGTH:
                raise self._error(key_node, f"secret key {shown(key)} is longer than {MAX_KEY_LENGTH} characters")
            if not key or not set(key) <= _KEY_CHARS:
                raise self._error(key_node, f"secret key {shown(key)} may only contain letters, digits, '_', '-', '.'")
            if key in out:
                raise self._error(key_node, f"secret key {shown(key)} appears twice (first at line {lines[key]})")
            lines[key] = key_node.start_mark.line + 1
            out[key] = self._entry(parsed, key, value_node)
        return out

    def _entry(self, parsed: _Parsed, key: str, node: Node) -> tuple[SourceSecret, Node]:
        name = shown(key)
        if not isinstance(node, MappingNode) or id(node) in parsed.tagged:
            return SourceSecret(key, SecretValue(self._text(parsed, node, f"the value of {name}"))), node
        fields = {self._text(parsed, k, "a field name"): v for k, v in self._pairs(parsed, node, name)}
        unknown = set(fields) - _ENTRY_FIELDS
        if unknown:
            raise self._error(node, f"{name}: unknown field(s) {sorted(unknown)}; expected value, comment, metadata")
        if "value" not in fields:
            raise self._error(node, f"{name}: missing field 'value'")
        value = self._text(parsed, fields["value"], f"the value of {name}")
        comment = self._text(parsed, fields["comment"], f"{name}.comment") if "comment" in fields else ""
        metadata: dict[str, str] = {}
        if "metadata" in fields:
            for mk, mv in self._pairs(parsed, fields["metadata"], f"{name}.metadata"):
                metadata[self._text(parsed, mk, "a metadata key")] = self._text(parsed, mv, f"{name}.metadata value")
        return SourceSecret(key, SecretValue(value), comment, frozen_map(metadata)), fields["value"]

    def _everything(self, parsed: _Parsed) -> dict[tuple[str, str], dict[str, SourceSecret]]:
        """Every folder's secrets (all of the file is checked, not only the folder asked for)."""
        out: dict[tuple[str, str], dict[str, SourceSecret]] = {}
        for f in self._folders(parsed):
            if f.key is not None:
                env = self._text(parsed, f.env_key, "an environment name")
                path = normalize_path(self._text(parsed, f.key, "a secret path"))
                found = self._secrets(parsed, f.value, path)
                out[(env, path)] = {k: s for k, (s, _) in found.items()}
        return out

    # -- the Source contract -------------------------------------------------------------------
    def read(self, folder: Folder) -> list[SourceSecret]:
        """Secrets of one environment and folder; a missing folder is an empty folder."""
        parsed = self._parse()
        path = normalize_path(folder.secret_path)
        _, found = self._find(parsed, folder.environment, path)
        return [s for s, _ in self._secrets(parsed, found.value if found is not None else None, path).values()]

    def change_token(self, folder: Folder) -> str:
        return content_token(self.read(folder))

    def close(self) -> None:
        return None

    def write(self, folder: Folder, updates: Mapping[str, SecretValue]) -> None:
        """Create or overwrite keys in one folder, changing no other byte of the file, then
        replace the file atomically (temp file + rename). The edit is read back before it is
        written: every other secret must read as before and each written one as written."""
        if not updates:
            return
        for key in updates:
            if not key or not set(key) <= _KEY_CHARS or len(key) > MAX_KEY_LENGTH:
                raise SourceError(f"{self.path}: cannot import key {shown(key)}: a secrets file key may only "
                                  f"contain letters, digits, '_', '-', '.' (at most {MAX_KEY_LENGTH})")
        with self._exclusive():
            self._write_locked(folder, updates)

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One import into a file at a time, across threads (the daemon runs syncs of one
        source at once) and processes (two `reconciler import`s): each reads, edits and
        replaces the whole file, so a second replace would drop the first one's keys. The
        lock is on the directory, since the file itself is replaced (a new inode) each time."""
        directory = Path(os.path.realpath(self.path)).parent
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise SourceError(f"{self.path}: cannot write the secrets file: {os_reason(e)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _write_locked(self, folder: Folder, updates: Mapping[str, SecretValue]) -> None:
        parsed = self._parse(missing_ok=True)
        before = self._everything(parsed)  # a broken file is refused here, never overwritten
        text = self._edit(parsed, folder, updates)
        try:
            after = self._everything(self._parsed_text(text))
        except (yaml.YAMLError, SourceError):
            after = None
        place = (folder.environment, normalize_path(folder.secret_path))
        expected = {k: dict(v) for k, v in before.items()}
        current = expected.setdefault(place, {})
        for key, value in updates.items():
            old = current.get(key)
            current[key] = SourceSecret(key, value, old.comment if old else "", old.metadata if old else frozen_map())
        if after != expected:
            raise SourceError(f"{self.path}: import wrote nothing: this file's layout cannot be edited in place "
                              "safely (the edit would not read back as intended); add the keys by hand, or "
                              "rewrite the folder in plain block style")
        self._replace(text)

    def _parsed_text(self, text: str) -> _Parsed:
        loader = _Loader(text)
        try:
            return _Parsed(text, loader.get_single_node(), frozenset(loader.tagged))
        finally:
            loader.dispose()

    def _edit(self, parsed: _Parsed, folder: Folder, updates: Mapping[str, SecretValue]) -> str:
        path = normalize_path(folder.secret_path)
        env_entry, folder_entry = self._find(parsed, folder.environment, path)
        editor = TextEdit(parsed.text, _indent_step(parsed.root))
        new: dict[str, str] = {}
        existing = self._secrets(parsed, folder_entry.value, path) if folder_entry is not None else {}
        for key in sorted(updates):
            value = quote(updates[key].reveal())
            if key in existing:
                editor.replace(existing[key][1], value)
            else:
                new[key_text(key)] = value
        if new:
            entries: Entries = new
            if folder_entry is not None and folder_entry.key is not None and folder_entry.value is not None:
                self._add(editor, folder_entry.key, folder_entry.value, entries, folder_entry.env_value)
            else:
                entries = {key_text(path): entries}
                if env_entry is not None:
                    self._add(editor, env_entry.env_key, env_entry.env_value, entries, parsed.root)
                elif isinstance(parsed.root, MappingNode):
                    editor.add_to_mapping(parsed.root, {key_text(folder.environment): entries})
                else:
                    editor.append_top({key_text(folder.environment): entries})
        return editor.result()

    @staticmethod
    def _add(editor: TextEdit, key: Node, value: Node, entries: Entries, parent: Node | None) -> None:
        if isinstance(value, MappingNode):
            editor.add_to_mapping(value, entries, key)
        elif isinstance(value, ScalarNode):
            flow = isinstance(parent, MappingNode) and bool(parent.flow_style)
            editor.fill_empty(key, value, entries, flow_parent=flow)

    def _replace(self, text: str) -> None:
        target = Path(os.path.realpath(self.path))  # a symlinked secrets file stays a symlink
        try:
            mode = target.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o600
        try:
            atomicfile.replace(target, text.encode("utf-8"), mode=mode, keep_owner=True, durable=True)
        except OSError as e:
            raise SourceError(f"{self.path}: cannot write the secrets file: {os_reason(e)}") from None


def _indent_step(root: Node | None) -> int:
    """The file's own indentation step (2 when it shows none)."""
    if isinstance(root, MappingNode):
        for key, value in root.value:
            if isinstance(value, MappingNode) and not value.flow_style and value.value:
                step = int(value.value[0][0].start_mark.column - key.start_mark.column)
                if step > 0:
                    return step
    return 2


def open_connection(conn: ConnectionInfo) -> FileSource:
    """The catalog's opener: the file the loader resolved from the Connection's ``path``."""
    if conn.path is None:
        raise SourceError(f"connection {conn.name}: no path")
    return FileSource(conn.path)
