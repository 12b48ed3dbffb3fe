"""The Markdown plan (pull-request comments): a golden snapshot, hostile keys kept inert, no
ANSI and no value; and the text plan's header naming the target with properties by name."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

from reconciler.changes import Action, Change, Plan, PlanIssue
from reconciler.model import SecretValue
from reconciler.planning.markdown import render_markdown
from reconciler.planning.render import PlanError, render_text
from tests.support.canary import find_leaks
from tests.test_render import BROKEN, CLEAN, PAYMENTS

TARGET = "AWS Secrets Manager region us-east-1 of connection 'aws'"

GOLDEN = """\
## reconciler plan

**Total: 1 to create, 3 to update, 1 to delete, 1 to restore in 3 syncs (1 could not be planned).**

### `payments` → AWS Secrets Manager region us-east-1 of connection 'aws'

| | action | key | details |
|---|---|---|---|
| `^` | restore | `PEND` | scheduled for deletion |
| `+` | create | `DB_URL` | new |
| `~` | update | `API_KEY` | value changed |
| `~` | update | `PEND` | value unknown |
| `~` | update | `TAGGED` | tags changed; sets `tag team` |
| `-` | delete | `OLD` | not in source; **\\[not created by reconciler\\]** |

**Drift** (not corrected, `drift: report`):

| | action | key | details |
|---|---|---|---|
| `~` | update | `EDITED` | changed outside reconciler |

- **warning**: `DIS`: disabled at destination; left alone

**Plan: 1 to create, 3 to update, 1 to delete, 1 to restore.**

### `billing` → windmill

No changes. `billing` is up to date.

### `legacy` → oci-vault

- **error**: source unreadable: connection refused

**Error: `legacy` could not be planned.**
"""


def test_golden_markdown() -> None:
    plans: list[Plan | PlanError] = [dataclasses.replace(PAYMENTS, target=TARGET), CLEAN, BROKEN]
    text = render_markdown(plans)
    assert text == GOLDEN
    assert "\x1b" not in text
    assert not find_leaks([text], ["s3cret", "postgres://x"])


def test_empty_markdown() -> None:
    assert render_markdown([]) == "## reconciler plan\n\nNo syncs planned.\n"


def test_hostile_keys_stay_inert() -> None:
    """A destination key is someone else's text: it cannot break the table, open a link,
    inject HTML, mention a team or fake a summary line in the PR thread."""
    evil = "a|b`c<img src=x>@org/team\n**Plan: 0 to create**"
    p = Plan("s", "d", changes=(Change(Action.DELETE, evil, "not in source"),),
             issues=(PlanIssue(f"see [here](http://x) @{evil}", key=evil),))
    text = render_markdown([p])
    row = next(line for line in text.splitlines() if line.startswith("| `-`"))
    assert row.count(" | ") == 3, "a pipe in a key does not add a column"
    assert "`` a\\|b`c<img src=x>@org/team\\x0a**Plan: 0 to create** ``" in row, "one code span"
    issue = next(line for line in text.splitlines() if line.startswith("- **error**"))
    prose = issue.split("``: ", 1)[1]
    assert "\\[here\\]\\(http://x\\)" in prose and "&#64;" in prose and "@" not in prose
    assert "\\<img" in prose
    assert "\n**Plan: 0 to create**" not in text


def test_property_changes_by_name() -> None:
    p = Plan("s", "aws-secrets-manager", target=TARGET, changes=(
        Change(Action.UPDATE, "K", "KMS key and tags changed", SecretValue("v"), "fp", value_changed=False,
               set_properties=MappingProxyType({"kms": "alias/x", "tag:team": "pay"}),
               unset_properties=("tag:old",)),
    ))
    text = render_text([p], color=False, properties=True)
    assert text.splitlines()[:5] == [
        f"sync s → {TARGET}",
        "  ~ K (KMS key and tags changed)",
        "      ~ KMS key",
        "      - tag old",
        "      ~ tag team",
    ]
    assert "alias/x" not in text and "pay" not in text, "names, not values"
    md = render_markdown([p])
    assert "sets `KMS key`, `tag team`; removes `tag old`" in md
