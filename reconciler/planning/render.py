"""Plan output for people (Terraform-like text) and machines (the pinned JSON shape).

Renderers see keys, actions, reasons and property *names* only. They never touch a
value or a fingerprint, so there is nothing to redact; keys are printed with control
characters escaped, because a destination key is attacker-chosen text on a reviewer's
terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from reconciler.changes import Action, Change, Plan, PlanIssue
from reconciler.printable import one_line

FORMAT_VERSION: Final = "1"
UNOWNED_LABEL: Final = "[not created by reconciler]"

_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_COLORS: Final = {
    Action.CREATE: "\x1b[32m",  # green
    Action.UPDATE: "\x1b[33m",  # yellow
    Action.DELETE: "\x1b[31m",  # red
    Action.RESTORE: "\x1b[36m",  # cyan
    Action.IMPORT: "\x1b[35m",  # magenta
}
_SEVERITY_COLORS: Final = {"error": "\x1b[31m", "warning": "\x1b[33m"}
#: reasons too ordinary to print after the key
_DEFAULT_REASONS: Final = {Action.CREATE: "new", Action.DELETE: "not in source"}


@dataclass(frozen=True)
class PlanError:
    """A sync that could not be planned (source unreadable, destination unreachable).

    ``message`` is shown as is: callers pass error text, never values."""

    sync: str
    destination: str
    message: str
    #: the destination's place for people (the descriptor's ``describe``), when known
    target: str = ""


#: escape control characters (ANSI escapes, newlines) so one line stays one line
_safe = one_line


class _Style:
    def __init__(self, color: bool) -> None:
        self.color = color

    def paint(self, text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if self.color else text


def _change_line(c: Change, style: _Style, indent: str) -> str:
    symbol = style.paint(c.action.symbol, _COLORS[c.action])
    detail = c.reason
    if c.action is Action.RESTORE:
        detail = f"restore: {c.reason}" if c.reason else "restore"
    elif c.action is Action.IMPORT:
        detail = f"import into source: {c.reason}" if c.reason else "import into source"
    elif c.reason == _DEFAULT_REASONS.get(c.action):
        detail = ""
    line = f"{indent}{symbol} {_safe(c.key)}"
    if detail:
        line += f" ({_safe(detail)})"
    if c.unowned:
        line += f" {UNOWNED_LABEL}"
    return line


def property_label(destination: str, name: str) -> str:
    """A property by name for people: ``tag:team`` -> ``tag team``, ``kms`` -> ``KMS key``."""
    if name.startswith("tag:"):
        return f"tag {name[4:]}"
    from reconciler.destinations import catalog

    desc = catalog.default().get(destination)
    return desc.property_names.get(name, name) if desc is not None else name


def property_lines(c: Change, destination: str) -> list[tuple[str, str]]:
    """(symbol, label) per property an UPDATE sets or removes; names only, never values."""
    if c.action is not Action.UPDATE:
        return []
    return sorted([*(("~", property_label(destination, n)) for n in c.set_properties),
                   *(("-", property_label(destination, n)) for n in c.unset_properties)], key=lambda t: t[1])


def header(sync: str, destination: str, target: str = "") -> str:
    """``sync NAME → where``: the target when the plan knows it, else the destination id."""
    return f"sync {_safe(sync)} → {_safe(target or destination)}"


def _issue_line(issue: PlanIssue, style: _Style) -> str:
    code = _SEVERITY_COLORS.get(issue.severity, "")
    where = f"{_safe(issue.key)}: " if issue.key else ""
    bang, severity = style.paint("!", code), style.paint(issue.severity, code)
    return f"  {bang} {severity}: {where}{_safe(issue.message)}"


def _counts(changes: Sequence[Change]) -> dict[Action, int]:
    return {a: sum(1 for c in changes if c.action is a) for a in Action}


def _summary(counts: dict[Action, int]) -> str:
    text = (
        f"{counts[Action.CREATE]} to create, {counts[Action.UPDATE]} to update, "
        f"{counts[Action.DELETE]} to delete"
    )
    for action in (Action.RESTORE, Action.IMPORT):
        if counts[action]:
            text += f", {counts[action]} to {action.value}"
    return text


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _changes(changes: Sequence[Change], style: _Style, indent: str, destination: str | None) -> list[str]:
    lines = []
    for c in changes:
        lines.append(_change_line(c, style, indent))
        if destination is not None:
            lines += [f"{indent}    {sym} {_safe(label)}" for sym, label in property_lines(c, destination)]
    return lines


def _render_plan(p: Plan, style: _Style, properties: bool) -> list[str]:
    by_name = p.destination if properties else None
    lines = [style.paint(header(p.sync, p.destination, p.target), _BOLD)]
    lines += _changes(p.changes, style, "  ", by_name)
    if p.drift:
        lines.append("  Drift (not corrected, drift: report):")
        lines += _changes(p.drift, style, "    ", by_name)
    lines += [_issue_line(i, style) for i in p.issues]
    lines.append(outcome_line(p, _safe(p.sync)))
    return lines


def outcome_line(p: Plan, name: str) -> str:
    """The plan's last line, Terraform-like: what it will do, or why nothing is up to date
    (``name`` is the sync's name as the format quotes it)."""
    if p.changes:
        return f"Plan: {_summary(_counts(p.changes))}."
    if not p.drift and not p.errors:
        return f"No changes. {name} is up to date."
    problems = []
    if p.drift:
        problems.append(_plural(len({c.key for c in p.drift}), "drifted key") + " not corrected")
    if p.errors:
        problems.append(_plural(len(p.errors), "error"))
    return f"No changes. {name} is not up to date: {', '.join(problems)}."


def _render_error(e: PlanError, style: _Style) -> list[str]:
    return [
        style.paint(header(e.sync, e.destination, e.target), _BOLD),
        _issue_line(PlanIssue(e.message), style),
        f"Error: {_safe(e.sync)} could not be planned.",
    ]


def render_text(plans: Sequence[Plan | PlanError], *, color: bool, properties: bool = False) -> str:
    """Terraform-like text: one block per sync, then a total when there is more than one.
    With ``properties``, each update lists the properties it sets or removes by name."""
    style = _Style(color)
    blocks: list[str] = []
    total = dict.fromkeys(Action, 0)
    failed = 0
    for p in plans:
        if isinstance(p, PlanError):
            failed += 1
            blocks.append("\n".join(_render_error(p, style)))
            continue
        for action, n in _counts(p.changes).items():
            total[action] += n
        blocks.append("\n".join(_render_plan(p, style, properties)))
    if len(plans) > 1:
        line = f"Total: {_summary(total)} in {len(plans)} syncs"
        if failed:
            line += f" ({failed} could not be planned)"
        blocks.append(line + ".")
    return "\n\n".join(blocks) + "\n" if blocks else ""


def _change_json(c: Change) -> dict[str, Any]:
    """Pinned: action, key, reason. Extras: flags and property *names* (never values)."""
    wrote_value = c.value_changed if c.action is Action.UPDATE else c.action in (Action.CREATE, Action.IMPORT)
    return {
        "action": c.action.value,
        "key": c.key,
        "reason": c.reason,
        "unowned": c.unowned,
        "drift": c.drift,
        "value_changed": wrote_value,
        "properties": sorted({*c.set_properties, *c.unset_properties}),
    }


def _sync_json(p: Plan | PlanError) -> dict[str, Any]:
    if isinstance(p, PlanError):
        plan = Plan(p.sync, p.destination)
        error: str | None = p.message
    else:
        plan, error = p, None
    counts = _counts(plan.changes)
    doc: dict[str, Any] = {
        "name": plan.sync,
        "destination": plan.destination,
        "error": error,
        "changes": [_change_json(c) for c in plan.changes],
        "summary": {
            "create": counts[Action.CREATE],
            "update": counts[Action.UPDATE],
            "delete": counts[Action.DELETE],
            "unchanged": plan.unchanged,
            "restore": counts[Action.RESTORE],
            "import": counts[Action.IMPORT],
        },
        "drift": [_change_json(c) for c in plan.drift],
        "issues": [{"severity": i.severity, "key": i.key, "message": i.message} for i in plan.issues],
    }
    target = p.target if isinstance(p, PlanError) else plan.target
    if target:  # additive: present when the plan knows its destination's place
        doc["target"] = target
    return doc


def render_json(plans: Sequence[Plan | PlanError]) -> dict[str, Any]:
    """``{"format_version": "1", "syncs": [...]}`` in the pinned shape, plus additive extras."""
    return {"format_version": FORMAT_VERSION, "syncs": [_sync_json(p) for p in plans]}
