"""Planner inputs that are not state: the sync's scope and policy switches."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler import keyschema


@dataclass(frozen=True)
class PlanOptions:
    """Everything the planner needs to know about one sync besides the three state maps.

    ``key_schema`` is already transformed by the destination's name rules, so scope is
    decided on destination names. ``exact_scope`` (many-to-one) replaces the schema: the
    sync owns exactly these keys.
    """

    sync: str
    destination: str
    key_schema: str | None
    environment: str
    exact_scope: frozenset[str] | None = None
    disable_deletion: bool = False
    #: (n, is_percent); None = the default guard (never delete every in-scope key)
    max_deletes: tuple[float, bool] | None = None
    drift: str = "correct"  # correct | report
    #: the source returned no secrets at all
    source_empty: bool = False
    #: the destination can store ""
    allows_empty: bool = True
    max_value_bytes: int | None = None
    #: human name of the destination, e.g. "AWS Secrets Manager", for reasons and issues
    destination_label: str = ""

    @property
    def label(self) -> str:
        return self.destination_label or self.destination

    @property
    def report_drift(self) -> bool:
        """Only ``report`` withholds corrections; anything else corrects (the safe default
        for a reconciler is to converge)."""
        return self.drift == "report"


def in_scope(key: str, options: PlanOptions) -> bool:
    """Whether the sync owns ``key``: exact membership (many-to-one) or the schema's match."""
    if options.exact_scope is not None:
        return key in options.exact_scope
    return keyschema.matches(key, options.key_schema, options.environment)
