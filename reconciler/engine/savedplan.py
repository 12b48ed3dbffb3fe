"""Saved plans: ``plan --out FILE`` and ``apply --plan FILE`` (the Terraform workflow).

The file holds each sync's canonical plan (:mod:`reconciler.planning.canonical`: keys,
actions, fingerprints, the destination version markers planned against) and a digest of the
specs, authenticated with an HMAC under the state's fingerprint key, so an edited file, or
one made against another state, is refused. It never holds a value, so it carries none: an
apply re-plans, and applies the fresh plan only if it is *the same* plan — equal canonical
digests — for every sync; otherwise the whole file is refused as stale and nothing is
written. Equality is enough because the Plan carries everything apply does.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from reconciler import __version__, atomicfile
from reconciler.changes import Plan
from reconciler.engine.outcome import Outcome, Refused, now_iso
from reconciler.engine.reconcile import Reconciler
from reconciler.errors import ConfigError
from reconciler.model import Fingerprinter, SecretValue
from reconciler.planning.canonical import canonical, digest, dumps
from reconciler.specs.digest import spec_digest
from reconciler.specs.model import SecretSync, SpecSet
from reconciler.yamlsafe import InputError, read_regular

FORMAT: Final = "reconciler-plan"
FORMAT_VERSION: Final = "1"
#: far above any real plan (keys and fingerprints only), far below what fits in memory
MAX_PLAN_BYTES: Final = 256 << 20
#: domain separation: the MAC can never equal a value's fingerprint under the same key
_MAC_DOMAIN: Final = "reconciler saved plan v1\n"
_AGAIN: Final = "nothing was applied; run `reconciler plan --out` again and review the new plan"


class PlanFileError(ConfigError):
    """The file is not a saved plan this state can vouch for (unreadable, edited, foreign)."""


def _mac(fp: Fingerprinter, body: Mapping[str, Any]) -> str:
    return fp(SecretValue(_MAC_DOMAIN + dumps(body)))


def build(plans: Sequence[Plan], specs: SpecSet, selection: Sequence[str], fp: Fingerprinter) -> dict[str, Any]:
    """The file's content: the plans, what they rest on, and the MAC over all of it."""
    body: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "reconciler": __version__,
        "created_at": now_iso(),
        "selection": sorted(selection),
        "specs": {"digest": spec_digest(specs, selection or None)},
        "syncs": [{"name": p.sync, "digest": digest(canonical(p)), "plan": canonical(p)} for p in plans],
    }
    return {**body, "mac": _mac(fp, body)}


def write(path: Path, data: Mapping[str, Any]) -> None:
    """Atomically, mode 0600 from the start (a plan names keys and fingerprints).

    An OSError names ``path``, the file the user asked for, not the temporary beside it."""
    atomicfile.replace(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode("utf-8"), prefix=".plan-")


def read(path: Path, fp: Fingerprinter) -> dict[str, Any]:
    """The saved plan, once its MAC checks out under this state's key."""
    try:  # a regular file of bounded size: `--plan /dev/zero` ran out of memory
        raw = read_regular(path, MAX_PLAN_BYTES)
    except InputError as e:
        raise PlanFileError(f"{path}: cannot read the plan file ({str(e).removeprefix('cannot be read: ')})") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError:
        raise PlanFileError(f"{path}: not a saved plan (not JSON)") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PlanFileError(f"{path}: not a saved plan (made by `reconciler plan --out`)")
    if data.get("format_version") != FORMAT_VERSION:
        raise PlanFileError(f"{path}: plan format {data.get('format_version')!r} is not supported "
                            f"(this reconciler reads {FORMAT_VERSION!r})")
    body = {k: v for k, v in data.items() if k != "mac"}
    mac = data.get("mac")
    if not isinstance(mac, str) or not hmac.compare_digest(mac, _mac(fp, body)):
        raise PlanFileError(f"{path}: the plan file was edited, or made with another state directory's key; "
                            "refused (nothing was applied)")
    syncs = data.get("syncs")
    if not isinstance(syncs, list) or not all(isinstance(s, dict) and isinstance(s.get("name"), str)
                                               for s in syncs):
        raise PlanFileError(f"{path}: damaged saved plan (syncs)")
    return data


def _keys(rows: Any) -> dict[str, Any]:
    return {r[0]: r[1:] for r in rows or () if isinstance(r, list) and r}


def _shown(keys: set[str]) -> str:
    ordered = sorted(keys)
    return ", ".join(ordered[:5]) + (f" and {len(ordered) - 5} more" if len(ordered) > 5 else "")


def stale_reason(saved: Mapping[str, Any], plan: Plan) -> str | None:
    """Why the fresh ``plan`` is not the saved one (None: it is)."""
    fresh = canonical(plan)
    if saved.get("digest") == digest(fresh) and saved.get("plan") == fresh:
        return None
    old = saved.get("plan") or {}
    old_basis, new_basis = old.get("basis") or {}, fresh["basis"]
    reasons = []
    o1, o2 = _keys(old_basis.get("observed")), _keys(new_basis["observed"])
    moved = {k for k in o1.keys() | o2.keys() if o1.get(k) != o2.get(k)}
    if moved:
        reasons.append(f"the destination changed ({_shown(moved)})")
    d1, d2 = _keys(old_basis.get("desired")), _keys(new_basis["desired"])
    changed = {k for k in d1.keys() | d2.keys() if d1.get(k) != d2.get(k)}
    if changed:
        reasons.append(f"the source changed ({_shown(changed)})")
    if not reasons:
        reasons.append("its plan differs (state or policy changed)")
    return f"sync {plan.sync}: " + " and ".join(reasons)


def _chosen(specs: SpecSet, saved: Mapping[str, Any], where: str) -> list[tuple[SecretSync, Mapping[str, Any]]]:
    selection = saved.get("selection") or []
    if spec_digest(specs, selection or None) != (saved.get("specs") or {}).get("digest"):
        raise Refused(f"plan {where} is stale: the specs changed since it was made; {_AGAIN}")
    chosen = []
    for entry in saved["syncs"]:
        sync = specs.syncs.get(entry["name"])
        if sync is None:  # cannot happen with equal digests; kept for a damaged selection
            raise Refused(f"plan {where} is stale: sync {entry['name']} is no longer in the specs; {_AGAIN}")
        chosen.append((sync, entry))
    return chosen


def apply_saved(rec: Reconciler, saved: Mapping[str, Any], where: str) -> list[Outcome]:
    """Re-plan every sync of the saved plan; if each fresh plan equals its saved one, apply
    the fresh plans (each checked once more just before it writes), else raise
    :class:`Refused` with every reason, having written nothing."""
    chosen = _chosen(rec.specs, saved, where)
    syncs = [sync for sync, _ in chosen]
    reasons = []
    with rec.sharing(syncs):
        planned = [(rec.plan_sync(sync), entry) for sync, entry in chosen]
    for out, entry in planned:
        if out.error is not None or out.plan is None:
            raise Refused(f"sync {out.sync} could not be re-planned: {out.error or 'no plan'}; "
                          "nothing was applied")
        reason = stale_reason(entry, out.plan)
        if reason is not None:
            reasons.append(reason)
    if reasons:
        raise Refused(f"plan {where} is stale: " + "; ".join(reasons) + f"; {_AGAIN}")

    def expect(entry: Mapping[str, Any]) -> Any:
        return lambda plan: (None if (r := stale_reason(entry, plan)) is None
                             else f"plan {where} went stale while applying: {r}; this sync was not applied")

    outcomes = []
    with rec.sharing(syncs):
        for sync, entry in chosen:
            if rec.stop.is_set():  # interrupted: start no further sync
                break
            outcomes.append(rec.apply_sync(sync, expect=expect(entry)))
    return outcomes
