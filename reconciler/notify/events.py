"""Which events one run raises, and the message each becomes. Pure: no network, no clock.

A message names syncs and keys and counts things; it never holds a value, and its texts are
the engine's own status messages (which hold none either). Slack's ``text`` is mrkdwn, so
``&``, ``<`` and ``>`` are escaped: a key or an error text must not become ``<!channel>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from reconciler.changes import Action
from reconciler.engine.outcome import Outcome, message
from reconciler.engine.report import summary

#: drifted keys named in one message; the count says how many there were
MAX_KEYS: Final = 20
_COLOR: Final = {"sync-failed": "danger", "sync-recovered": "good", "drift-detected": "warning"}


@dataclass(frozen=True)
class Event:
    name: str  # sync-failed | sync-recovered | drift-detected
    sync: str
    destination: str
    target: str
    run_id: str
    text: str  # plain; escaped when it becomes mrkdwn
    details: Mapping[str, Any] = field(default_factory=dict)


def counts(out: Outcome) -> dict[str, int]:
    ok = [r for r in out.results if r.ok]
    return {"created": sum(1 for r in ok if r.change.action is Action.CREATE),
            "updated": sum(1 for r in ok if r.change.action is Action.UPDATE),
            "deleted": sum(1 for r in ok if r.change.action is Action.DELETE),
            "failed": len(out.results) - len(ok)}


def of_run(out: Outcome, *, failures_before: int, run_id: str, target: str = "") -> list[Event]:
    """The events of one finished run. ``failures_before``: failed runs in a row before it."""
    where = f"{out.destination}{' (' + target + ')' if target else ''}"
    base = {"sync": out.sync, "destination": out.destination, "target": target, "run_id": run_id}
    found: list[Event] = []
    if out.failed:
        why = message(out) or "failed"
        attempt = failures_before + 1
        found.append(Event("sync-failed", text=f"reconciler: sync {out.sync} failed on {where}: {why}",
                           details={"message": why, "attempt": attempt, "counts": counts(out)}, **base))
    elif failures_before:
        found.append(Event("sync-recovered", text=(f"reconciler: sync {out.sync} recovered on {where} after "
                                                   f"{failures_before} failed run(s): {summary(out)}"),
                           details={"failedRuns": failures_before, "counts": counts(out)}, **base))
    if out.plan is not None:
        reported = sorted({c.key for c in out.plan.drift})
        corrected = sorted({c.key for c in out.plan.changes if c.drift})
        keys = sorted({*reported, *corrected})
        if keys:
            how = ("reported, not corrected (drift: report)" if reported and not corrected
                   else "corrected" if not reported else f"{len(corrected)} corrected, {len(reported)} reported")
            shown = ", ".join(keys[:MAX_KEYS]) + (f" and {len(keys) - MAX_KEYS} more" if len(keys) > MAX_KEYS else "")
            found.append(Event("drift-detected",
                               text=(f"reconciler: sync {out.sync}: {len(keys)} key(s) on {where} changed outside "
                                     f"reconciler, {how}: {shown}"),
                               details={"drifted": len(keys), "corrected": len(corrected), "reported": len(reported),
                                        "keys": keys[:MAX_KEYS]}, **base))
    return found


def mrkdwn(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(event: Event, *, notifier: str, suppressed: int, host: str, at: str) -> dict[str, Any]:
    """Slack's incoming-webhook JSON (``text`` and an attachment's fields; Mattermost's
    incoming webhooks read the same), and the same facts under ``reconciler`` for receivers
    that are programs."""
    text = event.text + (f" ({suppressed} similar message(s) held back by minInterval)" if suppressed else "")
    fields = [("sync", event.sync), ("destination", event.destination), ("target", event.target),
              ("run", event.run_id), ("host", host)]
    return {
        "text": mrkdwn(text),
        "attachments": [{
            "color": _COLOR.get(event.name, "warning"),
            "fallback": mrkdwn(text),
            "fields": [{"title": k, "value": mrkdwn(str(v)), "short": True} for k, v in fields if v],
        }],
        "reconciler": {"event": event.name, "sync": event.sync, "destination": event.destination,
                       "target": event.target, "runId": event.run_id, "notifier": notifier, "host": host,
                       "at": at, "suppressed": suppressed, **event.details},
    }


class RateLimit:
    """At most one message per (notifier, sync, event) every ``min_interval`` seconds; the
    next one sent says how many were held back meanwhile."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str, str], float] = {}
        self._held: dict[tuple[str, str, str], int] = {}

    def allow(self, key: tuple[str, str, str], now: float, min_interval: float) -> int | None:
        """None: hold this one back; else send it, reporting this many held back."""
        last = self._last.get(key)
        if last is not None and now - last < min_interval:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        self._last[key] = now
        return self._held.pop(key, 0)
