"""Planner properties over generated states, executed against the in-memory destination.

Small alphabets on purpose: keys collide across schemas, values collide across
desired/observed/inventory, so every branch of the planner is reached often.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from types import MappingProxyType

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import keyschema
from reconciler.changes import Action, Change, Plan, PlanIssue
from reconciler.model import DesiredEntry, InventoryEntry, Lifecycle, ObservedEntry, SecretValue
from reconciler.planning.guards import delete_limit
from reconciler.planning.planner import PlanOptions, in_scope, plan
from tests.support.simulate import FINGERPRINT, apply_plan, fp, observe

ENV = "dev"
SYNC = "s"
SCHEMAS = [
    None,
    "APP_{{secretKey}}",
    "{{secretKey}}_{{environment}}",
    "/path/{{secretKey}}",
    "{{secretKey}}/x",
    "{{secretKey}}_{{secretKey}}",
]
SOURCE_KEYS = ["A", "B", "C", "a/b"]
BUNDLE = "BUNDLE"
POOL = sorted(
    {keyschema.render(s, k, ENV) for s in SCHEMAS for k in SOURCE_KEYS}
    | {"OTHER", "APP_", "/path/nested/A", BUNDLE}
)
VALUES = ["", "v1", "v2", "long-value"]
MAX_DELETES = [None, (100.0, True), (50.0, True), (1.0, False), (0.0, False)]
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

props_st = st.dictionaries(
    st.sampled_from(["tag:team", "tag:env", "kms"]), st.sampled_from(["a", "b"]), max_size=2
)


def frozen(d: dict[str, str]) -> MappingProxyType[str, str]:
    return MappingProxyType(d)


@dataclass(frozen=True)
class Scenario:
    desired: dict[str, DesiredEntry]
    observed: dict[str, ObservedEntry]
    inventory: dict[str, InventoryEntry]
    options: PlanOptions
    soft_delete: bool

    def plan(self, drift: str | None = None) -> Plan:
        options = self.options if drift is None else dataclasses.replace(self.options, drift=drift)
        return plan(self.desired, self.observed, self.inventory, options)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    schema = draw(st.sampled_from(SCHEMAS))
    many_to_one = draw(st.integers(0, 4)) == 0
    if many_to_one:
        names = draw(st.lists(st.sampled_from([BUNDLE, "OTHER"]), unique=True, max_size=2))
    else:
        names = [
            keyschema.render(schema, k, ENV)
            for k in draw(st.lists(st.sampled_from(SOURCE_KEYS), unique=True))
        ]
    desired: dict[str, DesiredEntry] = {}
    for name in names:
        value = draw(st.sampled_from(VALUES))
        desired[name] = DesiredEntry(name, SecretValue(value), fp(value), frozen(draw(props_st)))
    # bias towards the desired keys so observed, inventory and desired overlap often
    pool_st = st.sampled_from(POOL)
    key_st = st.one_of(st.sampled_from(names), pool_st, pool_st) if names else pool_st
    observed: dict[str, ObservedEntry] = {}
    for key in draw(st.lists(key_st, unique=True, max_size=8)):
        seen_value = draw(st.sampled_from([None, *VALUES]))
        observed[key] = ObservedEntry(
            key,
            draw(st.sampled_from(["1", "2", None])),
            None if seen_value is None else fp(seen_value),
            draw(st.sampled_from(list(Lifecycle))),
            draw(st.sampled_from([None, SYNC, "other"])),
            frozen(draw(props_st)),
        )
    inventory: dict[str, InventoryEntry] = {}
    for key in draw(st.lists(key_st, unique=True, max_size=6)):
        d = desired.get(key)
        if d is not None and draw(st.booleans()):  # we wrote what is desired: a drift baseline
            inventory[key] = InventoryEntry(
                key, d.fingerprint, draw(st.sampled_from(["1", "2"])), d.properties
            )
            continue
        recorded_value = draw(st.sampled_from([None, *VALUES]))
        inventory[key] = InventoryEntry(
            key,
            None if recorded_value is None else fp(recorded_value),
            draw(st.sampled_from(["1", "2", None])),
            frozen(draw(props_st)),
        )
    options = PlanOptions(
        sync=SYNC,
        destination="sim",
        key_schema=schema,
        environment=ENV,
        exact_scope=frozenset({BUNDLE}) if many_to_one else None,
        disable_deletion=draw(st.booleans()),
        max_deletes=draw(st.sampled_from(MAX_DELETES)),
        drift=draw(st.sampled_from(["correct", "report"])),
        source_empty=not desired,
        allows_empty=draw(st.booleans()),
        max_value_bytes=draw(st.sampled_from([None, 5])),
        destination_label="Sim",
    )
    return Scenario(desired, observe(observed, inventory), inventory, options, draw(st.booleans()))


def _check_plan_shape(p: Plan, s: Scenario) -> None:
    for c in p.changes + p.drift:
        assert in_scope(c.key, s.options), c  # (c) never a key out of scope
        assert c.action is not Action.IMPORT
        if c.action is Action.DELETE:
            assert c.value is None  # (e)
        if c.action in (Action.CREATE, Action.UPDATE):
            assert c.value is not None and c.fingerprint == s.desired[c.key].fingerprint
        if c.action is Action.RESTORE:
            assert c.value is None
    assert all(c.action is not Action.DELETE for c in p.drift)
    keys = [(c.key, c.action.value) for c in p.changes]
    assert [k for k, _ in keys] == sorted(k for k, _ in keys)
    assert len(set(keys)) == len(keys)


@SETTINGS
@given(scenarios())
def test_apply_converges_and_never_touches_out_of_scope(s: Scenario) -> None:
    p1 = s.plan()
    _check_plan_shape(p1, s)
    a1 = apply_plan(
        s.observed, p1, FINGERPRINT, inventory=s.inventory, soft_delete=s.soft_delete
    )
    # (c) out-of-scope entries identical before and after
    for key, entry in s.observed.items():
        if not in_scope(key, s.options):
            assert a1.observed.get(key) == entry
    obs2 = observe(a1.observed, a1.inventory)
    p2 = plan(s.desired, obs2, a1.inventory, s.options)
    _check_plan_shape(p2, s)
    # (a) nothing left to write; only deletes a guard held back for a smaller scope may remain
    assert all(c.action is Action.DELETE for c in p2.changes), p2.changes
    guard_blocked = any(i.key is None and i.severity == "error" for i in p1.issues)
    if not guard_blocked:
        assert p2.changes == ()
    # (b) once converged, applying again writes nothing and the plan is stable
    a2 = apply_plan(
        obs2, p2, FINGERPRINT, inventory=a1.inventory, soft_delete=s.soft_delete
    )
    obs3 = observe(a2.observed, a2.inventory)
    p3 = plan(s.desired, obs3, a2.inventory, s.options)
    assert p3.changes == ()
    a3 = apply_plan(
        obs3, p3, FINGERPRINT, inventory=a2.inventory, soft_delete=s.soft_delete
    )
    assert a3.writes == 0 and a3.observed == obs3


@SETTINGS
@given(scenarios())
def test_deletion_guards_hold(s: Scenario) -> None:
    p = s.plan()
    deletes = [c for c in p.changes if c.action is Action.DELETE]
    if s.options.source_empty and s.inventory:
        assert deletes == []  # (d)
    if s.options.disable_deletion:
        assert deletes == []
    n_scope = sum(
        1 for k, o in s.observed.items() if in_scope(k, s.options) and o.lifecycle is Lifecycle.ACTIVE
    )
    arriving = sum(1 for c in p.changes if c.action in (Action.CREATE, Action.RESTORE))
    limit = delete_limit(s.options.max_deletes, n_scope + arriving)
    if limit is None:
        assert not deletes or len(deletes) < n_scope or arriving > 0  # never leaves the scope empty
    else:
        assert len(deletes) <= limit
    for c in deletes:
        o = s.observed[c.key]
        assert o.lifecycle is Lifecycle.ACTIVE and c.value is None
        d = s.desired.get(c.key)
        assert d is None or (d.value.is_empty() and not s.options.allows_empty)


@SETTINGS
@given(scenarios())
def test_report_mode_only_moves_changes_into_drift(s: Scenario) -> None:
    correct = s.plan(drift="correct")
    report = s.plan(drift="report")
    assert correct.drift == ()

    def kept(changes: tuple[Change, ...]) -> set[str]:
        return {c.key for c in changes if c.action is not Action.DELETE}

    def deleted(p: Plan) -> set[str]:
        return {c.key for c in p.changes if c.action is Action.DELETE}

    def other_issues(p: Plan) -> tuple[PlanIssue, ...]:
        return tuple(i for i in p.issues if "delete" not in i.message)

    assert kept(correct.changes) == kept(report.changes + report.drift)
    # a withheld re-create does not arrive: the delete guard may refuse more, never less
    assert deleted(report) <= deleted(correct)
    assert other_issues(correct) == other_issues(report)
    assert all(c.drift for c in report.drift)
    assert report.unchanged == correct.unchanged


# -- (f) a destination that differs from the inventory only by out-of-band edits -----------------

EDITS = ["value", "unknown-moved", "delete", "pending", "tag-edit", "tag-drop", "foreign-tag", "owner"]


@st.composite
def drifted(draw: st.DrawFn) -> tuple[Scenario, set[str]]:
    schema = draw(st.sampled_from(SCHEMAS))
    keys = draw(st.lists(st.sampled_from(["A", "B", "C", "D"]), unique=True, min_size=1))
    desired: dict[str, DesiredEntry] = {}
    observed: dict[str, ObservedEntry] = {}
    inventory: dict[str, InventoryEntry] = {}
    expected: set[str] = set()
    for k in keys:
        name = keyschema.render(schema, k, ENV)
        value = draw(st.sampled_from(VALUES))
        props = frozen(draw(props_st))
        desired[name] = DesiredEntry(name, SecretValue(value), fp(value), props)
        inventory[name] = InventoryEntry(name, fp(value), "1", props)
        o = ObservedEntry(name, "1", fp(value), Lifecycle.ACTIVE, SYNC, props)
        edit = draw(st.sampled_from([None, *EDITS]))
        if edit == "value":
            o = ObservedEntry(name, "2", fp(value + "-edited"), Lifecycle.ACTIVE, SYNC, props)
        elif edit == "unknown-moved":
            o = ObservedEntry(name, "2", None, Lifecycle.ACTIVE, SYNC, props)
        elif edit == "pending":
            o = ObservedEntry(name, "1", None, Lifecycle.PENDING_DELETION, SYNC, props)
        elif edit in ("tag-edit", "tag-drop") and props:
            first = sorted(props)[0]
            changed = {p: v for p, v in props.items() if p != first}
            if edit == "tag-edit":
                changed[first] = props[first] + "-edited"
            o = ObservedEntry(name, "1", fp(value), Lifecycle.ACTIVE, SYNC, frozen(changed))
        elif edit == "foreign-tag":
            o = ObservedEntry(name, "1", fp(value), Lifecycle.ACTIVE, SYNC, frozen({**props, "tag:zz": "x"}))
        elif edit == "owner":
            o = ObservedEntry(name, "1", fp(value), Lifecycle.ACTIVE, None, props)
        if edit != "delete":
            observed[name] = o
        if edit in ("value", "unknown-moved", "delete", "pending") or (
            edit in ("tag-edit", "tag-drop") and props
        ):
            expected.add(name)
    options = PlanOptions(
        SYNC, "sim", schema, ENV, exact_scope=None, drift="report", max_deletes=(100.0, True)
    )
    for foreign in ("OUTSIDE/elsewhere/x", "/path/nested/A"):
        if not in_scope(foreign, options):  # a neighbour's key: must stay invisible
            observed[foreign] = ObservedEntry(foreign, "9", fp("z"))
    return Scenario(desired, observed, inventory, options, False), expected


@SETTINGS
@given(drifted())
def test_report_mode_lists_out_of_band_edits_without_changes(case: tuple[Scenario, set[str]]) -> None:
    s, expected = case
    report = s.plan()
    assert report.changes == ()
    assert {c.key for c in report.drift} == expected
    assert report.unchanged == len(s.desired) - len(expected)
    correct = s.plan(drift="correct")
    assert {c.key for c in correct.changes} == expected and correct.drift == ()
    assert all(
        c.drift for c in correct.changes if c.action is not Action.UPDATE or c.reason != "value unknown"
    )


# -- plan() never raises ---------------------------------------------------------------------------

wild_text = st.text(max_size=6)


@settings(max_examples=200, deadline=None)
@given(
    desired=st.dictionaries(wild_text, st.tuples(wild_text, props_st), max_size=4),
    observed=st.dictionaries(
        wild_text,
        st.tuples(
            st.one_of(st.none(), wild_text), st.sampled_from(list(Lifecycle)), st.one_of(st.none(), wild_text)
        ),
        max_size=4,
    ),
    inventory=st.dictionaries(wild_text, st.one_of(st.none(), wild_text), max_size=4),
    schema=st.one_of(st.none(), wild_text, st.sampled_from(SCHEMAS)),
    max_deletes=st.one_of(
        st.none(), st.tuples(st.floats(allow_nan=True, allow_infinity=True), st.booleans())
    ),
    drift=st.text(max_size=8),
    max_bytes=st.one_of(st.none(), st.integers(-5, 20)),
)
def test_plan_never_raises(
    desired: dict[str, tuple[str, dict[str, str]]],
    observed: dict[str, tuple[str | None, Lifecycle, str | None]],
    inventory: dict[str, str | None],
    schema: str | None,
    max_deletes: tuple[float, bool] | None,
    drift: str,
    max_bytes: int | None,
) -> None:
    options = PlanOptions(
        "s",
        "d",
        schema,
        "dev",
        max_deletes=max_deletes,
        drift=drift,
        max_value_bytes=max_bytes,
        source_empty=not desired,
        allows_empty=max_bytes is None,
    )
    p = plan(
        {k: DesiredEntry(k, SecretValue(v), fp(v), frozen(pr)) for k, (v, pr) in desired.items()},
        {
            k: ObservedEntry(k, "1", None if v is None else fp(v), lc, ow)
            for k, (v, lc, ow) in observed.items()
        },
        {k: InventoryEntry(k, None if v is None else fp(v), "1") for k, v in inventory.items()},
        options,
    )
    assert all(c.value is None for c in p.changes if c.action is Action.DELETE)
    if max_deletes is not None and not math.isfinite(max_deletes[0]):
        assert not any(c.action is Action.DELETE for c in p.changes)
