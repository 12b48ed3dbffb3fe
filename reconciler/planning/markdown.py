"""The plan as Markdown, for a pull-request comment (``plan --format markdown``).

Same facts as the text plan — one section per sync naming its target, changes by action and
key with property changes by name, drift, issues, the summary line — and the same rule: keys,
actions, reasons and property names only, never a value or a fingerprint. Keys are someone
else's text, so they go into code spans with table pipes escaped, and our own prose is
escaped too (no injected links, images, HTML or @-mentions in a PR thread).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from reconciler.changes import Action, Change, Plan, PlanIssue
from reconciler.planning.render import (
    UNOWNED_LABEL,
    PlanError,
    _counts,
    _plural,
    _safe,
    _summary,
    outcome_line,
    property_lines,
)

TITLE: Final = "## reconciler plan"
_ORDER: Final = (Action.IMPORT, Action.RESTORE, Action.CREATE, Action.UPDATE, Action.DELETE)
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def _text(s: str) -> str:
    """Prose (reasons, messages, targets) with Markdown syntax and mentions neutralised."""
    return _MD_SPECIAL.sub(r"\\\1", _safe(s)).replace("@", "&#64;")


def _code(s: str) -> str:
    """A key as a code span: longer fences than any backtick run inside, pipes escaped."""
    s = _safe(s).replace("|", "\\|")
    run = max((len(m) for m in re.findall(r"`+", s)), default=0)
    fence = "`" * (run + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or run else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def _detail(c: Change, destination: str) -> str:
    parts = [_text(c.reason)] if c.reason else []
    props = property_lines(c, destination)
    for sym, verb in (("~", "sets"), ("-", "removes")):
        names = [_code(label) for s, label in props if s == sym]
        if names:
            parts.append(f"{verb} {', '.join(names)}")
    if c.unowned:
        parts.append(f"**{_text(UNOWNED_LABEL)}**")
    return "; ".join(parts)


def _table(changes: Sequence[Change], destination: str) -> list[str]:
    rows = sorted(changes, key=lambda c: (_ORDER.index(c.action), c.key))
    lines = ["| | action | key | details |", "|---|---|---|---|"]
    lines += [f"| `{c.action.symbol}` | {c.action.value} | {_code(c.key)} | {_detail(c, destination)} |"
              for c in rows]
    return lines


def _issue(i: PlanIssue) -> str:
    where = f"{_code(i.key)}: " if i.key else ""
    return f"- **{i.severity}**: {where}{_text(i.message)}"


def _heading(sync: str, destination: str, target: str) -> str:
    return f"### {_code(sync)} → {_text(target or destination)}"


def _section(p: Plan) -> list[str]:
    lines = [_heading(p.sync, p.destination, p.target), ""]
    if p.changes:
        lines += [*_table(p.changes, p.destination), ""]
    if p.drift:
        lines += ["**Drift** (not corrected, `drift: report`):", "", *_table(p.drift, p.destination), ""]
    if p.issues:
        lines += [*(_issue(i) for i in p.issues), ""]
    line = outcome_line(p, _code(p.sync))
    lines.append(f"**{line}**" if p.changes else line)
    return lines


def _error(e: PlanError) -> list[str]:
    return [_heading(e.sync, e.destination, e.target), "", f"- **error**: {_text(e.message)}", "",
            f"**Error: {_code(e.sync)} could not be planned.**"]


def render_markdown(plans: Sequence[Plan | PlanError]) -> str:
    """One document: a title with the total, then one section per sync."""
    total = dict.fromkeys(Action, 0)
    failed = 0
    sections: list[str] = []
    for p in plans:
        if isinstance(p, PlanError):
            failed += 1
            sections.append("\n".join(_error(p)))
            continue
        for action, n in _counts(p.changes).items():
            total[action] += n
        sections.append("\n".join(_section(p)))
    if not plans:
        return f"{TITLE}\n\nNo syncs planned.\n"
    head = f"{TITLE}\n\n**Total: {_summary(total)} in {_plural(len(plans), 'sync')}"
    head += f" ({failed} could not be planned).**" if failed else ".**"
    return "\n\n".join([head, *sections]) + "\n"
