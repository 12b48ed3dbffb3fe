"""Which destination keys a sync owns, and whether two syncs could both claim one key.

Two syncs that own overlapping keys on the same destination delete each other's secrets
(upstream issue #4318). Scope follows :func:`reconciler.keyschema.matches` exactly, so the
overlap test below is exact for it rather than a heuristic: if any key lies in both scopes,
one lies in a small finite candidate set, and we test membership with ``matches`` itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import combinations

from reconciler import keyschema
from reconciler.specs.model import Connection, SecretSync

Fold = Callable[[str], str]
WINDMILL_DEFAULT_URL = "https://app.windmill.dev"


def _same(s: str) -> str:
    return s


def _akv_fold(s: str) -> str:
    """Key Vault names: '_' is written as '-', and names compare case-insensitively."""
    return s.replace("_", "-").lower()


#: destination name rules applied before comparing; unsure about case -> fold (report more)
FOLDS: Mapping[str, Fold] = {
    "aws-secrets-manager": _same,
    "windmill": _same,
    "azure-key-vault": _akv_fold,
    "azure-devops": str.lower,
    "oci-vault": str.lower,
}


@dataclass(frozen=True)
class Scope:
    """Keys ``base + render(schema)`` (schema None = everything under base), or one ``exact`` key.

    ``base`` is a literal the destination puts in front of every key (a Windmill folder).
    """

    schema: str | None = None
    environment: str = ""
    base: str = ""
    exact: str | None = None

    def contains(self, key: str) -> bool:
        if self.exact is not None:
            return key == self.exact
        rest = key[len(self.base) :]
        return key.startswith(self.base) and keyschema.matches(rest, self.schema, self.environment)

    def _shape(self) -> tuple[str, str] | str:
        """(prefix, suffix) every member has, or the single member as a string."""
        if self.exact is not None:
            return self.exact
        if not self.schema or not self.schema.strip():
            return self.base, ""
        compiled = keyschema.render(self.schema, keyschema.SECRET_KEY, self.environment)
        parts = compiled.split(keyschema.SECRET_KEY)
        if len(parts) == 1:
            return self.base + parts[0]
        return self.base + parts[0], parts[-1]


def overlaps(a: Scope, b: Scope) -> bool:
    """Whether some key is in both scopes.

    Every member of a pattern scope starts with its prefix and ends with its suffix, and any
    further characters in the middle only make membership harder (length is already met, and
    the ``/`` rule only counts slashes). So a common key exists iff one of: longest prefix +
    longest suffix, or the two glued over a shared overlap, is in both.
    """
    sa, sb = a._shape(), b._shape()
    if isinstance(sa, str) and isinstance(sb, str):
        return sa == sb
    if isinstance(sa, str):
        return b.contains(sa)
    if isinstance(sb, str):
        return a.contains(sb)
    (pa, xa), (pb, xb) = sa, sb
    if not (pa.startswith(pb) or pb.startswith(pa)) or not (xa.endswith(xb) or xb.endswith(xa)):
        return False
    p, s = max(pa, pb, key=len), max(xa, xb, key=len)
    candidates = [p + s] + [p + s[o:] for o in range(1, min(len(p), len(s)) + 1) if p.endswith(s[:o])]
    return any(a.contains(k) and b.contains(k) for k in candidates)


def _url(value: object, default: str = "") -> str:
    return str(value or default).strip().rstrip("/").lower()


def target(sync: SecretSync, connection: Connection | None) -> tuple[str, ...]:
    """What a sync writes into; syncs with different targets can never collide."""
    cfg = sync.destination_config
    d = sync.destination
    if d == "aws-secrets-manager":
        return (d, sync.connection, str(cfg.get("region", "")))
    if d == "azure-key-vault":
        return (d, _url(cfg.get("vaultBaseUrl")))
    if d == "oci-vault":
        return (d, str(cfg.get("vaultOcid", "")))
    if d == "azure-devops":
        return (d, str(cfg.get("devopsProjectId", "")).lower())
    if d == "windmill":
        # the folder path is part of the key, not the target: a sync on f/a/ lists f/a/b/ too
        instance = _url(connection.settings.get("instanceUrl") if connection else None, WINDMILL_DEFAULT_URL)
        return (d, instance, str(cfg.get("workspace", "")).strip().lower())
    return (d, sync.connection)


def scopes(sync: SecretSync) -> tuple[Scope, ...]:
    """The sync's scope in destination names (after the destination's name rules)."""
    fold = FOLDS.get(sync.destination, str.lower)
    cfg = sync.destination_config
    env = fold(sync.environment)
    schema = keyschema.transform(sync.key_schema, fold)
    many = cfg.get("mappingBehavior") == "many-to-one"
    if sync.destination == "aws-secrets-manager" and many:
        name = keyschema.render(sync.key_schema, str(cfg["secretName"]), sync.environment)
        return (Scope(exact=fold(name)),)
    if sync.destination == "azure-key-vault" and many:
        # whether the schema renames the single secret is the destination's choice: claim both
        name = str(cfg["secretName"])
        names = {fold(name), fold(keyschema.render(sync.key_schema, name, sync.environment))}
        return tuple(Scope(exact=n) for n in sorted(names))
    base = str(cfg.get("path", "")) if sync.destination == "windmill" else ""
    return (Scope(schema=schema, environment=env, base=base),)


def find_overlaps(
    syncs: Mapping[str, SecretSync], connections: Mapping[str, Connection]
) -> list[tuple[str, str]]:
    """Pairs of sync names (sorted) whose scopes overlap on the same target."""
    by_target: dict[tuple[str, ...], list[SecretSync]] = {}
    for s in syncs.values():
        by_target.setdefault(target(s, connections.get(s.connection)), []).append(s)
    pairs: list[tuple[str, str]] = []
    for group in by_target.values():
        for a, b in combinations(sorted(group, key=lambda s: s.name), 2):
            if any(overlaps(x, y) for x in scopes(a) for y in scopes(b)):
                pairs.append((a.name, b.name))
    return pairs


def describe_target(sync: SecretSync) -> str:
    cfg = sync.destination_config
    d = sync.destination
    if d == "aws-secrets-manager":
        return f"AWS Secrets Manager region {cfg.get('region')} of connection '{sync.connection}'"
    if d == "azure-key-vault":
        return f"Key Vault {cfg.get('vaultBaseUrl')}"
    if d == "oci-vault":
        return f"OCI vault {cfg.get('vaultOcid')}"
    if d == "azure-devops":
        return f"Azure DevOps project {cfg.get('devopsProjectId')}"
    if d == "windmill":
        return f"Windmill workspace {cfg.get('workspace')}"
    return d
