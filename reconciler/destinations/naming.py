"""Key naming for every destination, driven by its descriptor: pure, no I/O.

Source keys become destination names through the key schema, then the destination's name
rule (``NameRule.rename``, its charset, length and case folding); many-to-one bundles a
folder into one JSON entry. The same module reads names back: which listed keys a sync owns
(:class:`Scope`), how a listed name is spelled for comparison, and which source key an
imported destination value belongs to. One algorithm, written once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from reconciler import keyschema
from reconciler.destinations import bundle
from reconciler.destinations.catalog import Descriptor, SyncView
from reconciler.model import DesiredEntry, ObservedEntry, SecretValue, SourceSecret, frozen_map

#: source keys an import may create: what a KMS or file source accepts (no '/' or ':')
_SOURCE_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+=.@-")


@dataclass(frozen=True)
class Scope:
    """Which destination keys a sync owns, in destination names.

    Keys are ``base + render(schema)`` matched as upstream's ``matchesSchema`` (``schema`` and
    ``environment`` already through the name rule), or exactly the names in ``exact``
    (many-to-one). With ``folders``, a key reaches into a sub-folder of ``base`` only when the
    schema itself contains '/'. ``wanted`` are the names the sync wants to hold: a destination
    that can find a pending-deletion entry only by its name looks those up when listing.
    ``pending_only``: the caller already holds a listing of the target (shared by several
    syncs) and asks only for the pending-deletion entries of ``wanted`` that a listing of
    this destination does not show; a destination whose listing shows them returns nothing.
    """

    schema: str | None = None
    environment: str = ""
    base: str = ""
    exact: frozenset[str] | None = None
    folders: bool = False
    wanted: frozenset[str] = field(default=frozenset(), compare=False)
    pending_only: bool = field(default=False, compare=False)

    def contains(self, key: str) -> bool:
        if self.exact is not None:
            return key in self.exact
        if not key.startswith(self.base):
            return False
        rest = key[len(self.base):]
        if self.folders and "/" in rest and "/" not in (self.schema or ""):
            return False
        return keyschema.matches(rest, self.schema, self.environment)

    @property
    def list_prefix(self) -> str:
        """A literal every in-scope key starts with ('' = none): for a server-side filter."""
        if self.exact is not None:
            return next(iter(self.exact)) if len(self.exact) == 1 else ""
        return self.base + keyschema.literal_prefix(self.schema, self.environment)

    def shape(self) -> tuple[str, str] | frozenset[str]:
        """(prefix, suffix) every member has, or the finite set of members."""
        if self.exact is not None:
            return self.exact
        if not self.schema or not self.schema.strip():
            return self.base, ""
        compiled = keyschema.render(self.schema, keyschema.SECRET_KEY, self.environment)
        parts = compiled.split(keyschema.SECRET_KEY)
        if len(parts) == 1:
            return frozenset({self.base + parts[0]})
        return self.base + parts[0], parts[-1]


def _names(desc: Descriptor, fold: bool) -> Callable[[str], str]:
    rule = desc.names
    return (lambda s: rule.fold(rule.rename(s))) if fold else rule.rename


def bundle_name(desc: Descriptor, view: SyncView) -> str | None:
    """The single entry of a many-to-one sync (None when ``secretName`` is missing)."""
    name = view.destination_config.get("secretName")
    if not name:
        return None
    if desc.bundle_name_in_schema:
        return keyschema.render(view.key_schema, str(name), view.environment)
    return str(name)


def scope(desc: Descriptor, view: SyncView, *, fold: bool = False, wanted: Iterable[str] = ()) -> Scope:
    """The sync's scope; ``fold`` gives it in the form names collide in (overlap checks)."""
    fn = _names(desc, fold)
    base = desc.base(view)
    if desc.capabilities.many_to_one and view.many_to_one:
        name = bundle_name(desc, view)
        return Scope(exact=frozenset({fn(base + name)} if name else ()), wanted=frozenset(wanted))
    return Scope(schema=keyschema.transform(view.key_schema, fn), environment=fn(view.environment),
                 base=fn(base) if fold else base, folders=desc.names.folders, wanted=frozenset(wanted))


@dataclass(frozen=True)
class Rendered:
    """Source secrets as destination entries. ``problems`` block their keys (plan errors);
    ``blocked`` holds folded names several source keys collide on: the destination entry of
    that name is hidden from the plan, neither written nor deleted."""

    entries: Mapping[str, DesiredEntry]
    problems: tuple[tuple[str | None, str], ...] = ()
    blocked: frozenset[str] = frozenset()


def render(desc: Descriptor, view: SyncView, secrets: Sequence[SourceSecret],
           fingerprint: Callable[[SecretValue], str]) -> Rendered:
    """Render source secrets into the destination's names, with their properties."""
    if desc.capabilities.many_to_one and view.many_to_one:
        return _render_bundle(desc, view, secrets, fingerprint)
    rule, label = desc.names, desc.label
    base = desc.base(view)
    groups: dict[str, list[tuple[str, SourceSecret]]] = {}
    for s in secrets:
        name = base + rule.rename(keyschema.render(view.key_schema, s.key, view.environment))
        groups.setdefault(rule.fold(name), []).append((name, s))
    entries: dict[str, DesiredEntry] = {}
    problems: list[tuple[str | None, str]] = []
    blocked: set[str] = set()
    for folded, group in sorted(groups.items()):
        name, s = group[0]
        if len(group) > 1:
            blocked.add(folded)
            keys = ", ".join(sorted(x.key for _, x in group))
            why = _collision_why(desc)
            problems.append((name, f"{name}: source keys {keys} all render to this {label} name{why}; none is "
                                   "written and the destination entry is left alone until they are renamed"))
            continue
        problem = rule.problem(name)
        props = desc.properties(view, s.metadata)
        if desc.comment_property:
            props = {**props, desc.comment_property: s.comment}
        prop_problems = desc.property_problems(props)
        if problem or prop_problems:
            key = s.key if len(s.key) <= 80 else f"{s.key[:77]}... ({len(s.key)} characters)"
            problems += [(name, f"source key {key}: {p}") for p in ([problem] if problem else []) + prop_problems]
            continue
        entries[name] = DesiredEntry(name, s.value, fingerprint(s.value), frozen_map(props), (s.key,))
    return Rendered(entries, tuple(problems), frozenset(blocked))


def _collision_why(desc: Descriptor) -> str:
    rule = desc.names
    notes = []
    if rule.rename("_") != "_":
        notes.append(f"'_' is written as {rule.rename('_')!r}")
    if rule.case_insensitive:
        notes.append("names are case-insensitive")
    return f" ({' and '.join(notes)})" if notes else ""


def _render_bundle(desc: Descriptor, view: SyncView, secrets: Sequence[SourceSecret],
                   fingerprint: Callable[[SecretValue], str]) -> Rendered:
    name = bundle_name(desc, view)
    if not name:
        return Rendered({}, ((None, "destinationConfig.secretName is required for many-to-one"),))
    name = desc.names.rename(desc.base(view) + name)
    props = desc.properties(view, {})
    found = [p for p in [desc.names.problem(name), *desc.property_problems(props)] if p]
    if found:
        return Rendered({}, tuple((name, p) for p in found))
    if not secrets:
        return Rendered({})
    value = SecretValue(bundle.canonical_json({s.key: s.value.reveal() for s in secrets}))
    entry = DesiredEntry(name, value, fingerprint(value), frozen_map(props), tuple(s.key for s in secrets))
    return Rendered({name: entry})


def spell(desc: Descriptor, view: SyncView, listed: Iterable[ObservedEntry], rendered: Rendered,
          sc: Scope) -> dict[str, ObservedEntry]:
    """Listed entries keyed by the spelling the planner compares with.

    With case-insensitive names, a listed name takes the desired spelling it folds equal to,
    else the schema's literal prefix and suffix in the schema's case; entries on a blocked
    (colliding) name are left out.
    """
    rule = desc.names
    if not rule.case_insensitive:
        return {e.key: e for e in listed}
    desired = {rule.fold(k): k for k in rendered.entries}
    out: dict[str, ObservedEntry] = {}
    for e in listed:
        folded = rule.fold(e.key)
        if folded in rendered.blocked:
            continue
        name = desired.get(folded) or _schema_case(e.key, sc, rule.fold)
        if name != e.key:
            e = replace(e, key=name)
        out.setdefault(name, e)
    return out


def _schema_case(name: str, sc: Scope, fold: Callable[[str], str]) -> str:
    if sc.exact is not None:
        return next((x for x in sc.exact if fold(x) == fold(name)), name)
    if sc.contains(name) or not sc.schema:
        return name
    parts = keyschema.render(sc.schema, keyschema.SECRET_KEY, sc.environment).split(keyschema.SECRET_KEY)
    if len(parts) == 1:
        return parts[0] if fold(parts[0]) == fold(name) else name
    prefix, suffix = sc.base + parts[0], parts[-1]
    if (len(name) >= len(prefix) + len(suffix) and fold(name).startswith(fold(prefix))
            and fold(name).endswith(fold(suffix))):
        fixed = prefix + name[len(prefix):len(name) - len(suffix)] + suffix
        if sc.contains(fixed):
            return fixed
    return name


def import_keys(desc: Descriptor, view: SyncView, values: Mapping[str, SecretValue],
                rendered: Rendered) -> dict[str, SecretValue]:
    """In-scope destination values keyed by the source key they belong to (import).

    A name the source already renders to maps to that key; any other loses the base and the
    schema's affixes, and has the name rule's renaming undone where it is a plain character
    swap ('-' back to '_'). A name no valid source key renders to is skipped, never fatal
    (upstream #5366 failed the whole import on one).
    """
    if desc.capabilities.many_to_one and view.many_to_one:
        name = bundle_name(desc, view)
        v = values.get(desc.names.rename(desc.base(view) + name)) if name else None
        return {k: SecretValue(x) for k, x in bundle.scalars(v.reveal()).items()} if v else {}
    rule = desc.names
    known = {rule.fold(name): e.source_keys[0] for name, e in rendered.entries.items() if e.source_keys}
    undo = _undo(rule.rename)
    base = desc.base(view)
    schema = keyschema.transform(view.key_schema, rule.rename)
    env = rule.rename(view.environment)
    out: dict[str, SecretValue] = {}
    for name, value in values.items():
        key = known.get(rule.fold(name))
        if key is None and name.startswith(base):
            stripped = keyschema.strip(name[len(base):], schema, env)
            key = undo(stripped) if stripped else None
        if key and set(key) <= _SOURCE_KEY_CHARS:
            out[key] = value
    return out


def _undo(rename: Callable[[str], str]) -> Callable[[str], str]:
    """The inverse of a rename that swaps single characters (for the import way back)."""
    swaps = {rename(c): c for c in "_" if rename(c) != c and len(rename(c)) == 1}
    if not swaps:
        return lambda s: s
    table = str.maketrans(swaps)
    return lambda s: s.translate(table)
