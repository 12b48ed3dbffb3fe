"""Planner inputs that are not state: the sync's scope, the destination's limits, policy."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType

from reconciler.destinations.naming import Scope


def _no_problems(_properties: Mapping[str, str]) -> list[str]:
    return []


@dataclass(frozen=True)
class PlanOptions:
    """Everything the planner needs to know about one sync besides the three state maps.

    ``key_schema`` and ``environment`` are already through the destination's name rule, so
    scope is decided on destination names; ``base`` is a literal every key starts with, and
    ``folders`` keeps sub-folders of it out of scope unless the schema has '/'.
    ``exact_scope`` (many-to-one) replaces the schema: the sync owns exactly these keys.
    """

    sync: str
    destination: str
    key_schema: str | None
    environment: str
    exact_scope: frozenset[str] | None = None
    base: str = ""
    folders: bool = False
    disable_deletion: bool = False
    #: (n, is_percent); None = the default guard (never leave the scope empty)
    max_deletes: tuple[float, bool] | None = None
    drift: str = "correct"  # correct | report
    #: the source returned no secrets at all
    source_empty: bool = False
    #: the destination can store ""
    allows_empty: bool = True
    max_value_bytes: int | None = None
    #: human name of the destination, e.g. "AWS Secrets Manager", for reasons and issues
    destination_label: str = ""
    #: how plans name properties other than tags ({"kms": "KMS key"})
    property_names: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: the destination's limits on a full property set (tag counts and lengths)
    property_problems: Callable[[Mapping[str, str]], list[str]] = _no_problems
    #: values cannot be read back: why a moved version is rewritten (None: values readable)
    unreadable_drift: str | None = None

    @property
    def label(self) -> str:
        return self.destination_label or self.destination

    @property
    def report_drift(self) -> bool:
        """Only ``report`` withholds corrections; anything else corrects (the safe default
        for a reconciler is to converge)."""
        return self.drift == "report"

    @cached_property
    def scope(self) -> Scope:
        return Scope(schema=self.key_schema, environment=self.environment, base=self.base,
                     exact=self.exact_scope, folders=self.folders)


def in_scope(key: str, options: PlanOptions) -> bool:
    """Whether the sync owns ``key``: exact membership (many-to-one) or the schema's match."""
    return options.scope.contains(key)
