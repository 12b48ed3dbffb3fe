"""Prometheus metrics of one daemon, in its own registry (several daemons can share a process
in tests; nothing leaks into the global default registry)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from reconciler.engine.outcome import Outcome

#: reconcile durations span a no-op (tens of ms) to a large first sync (minutes)
_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        # the *_created series only double what scrapers read
        disable_created_metrics()  # type: ignore[no-untyped-call]
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.reconciles = Counter("reconciler_reconciles_total", "Reconciles run, by sync and result.",
                                  ["sync", "result"], registry=r)
        self.duration = Histogram("reconciler_reconcile_duration_seconds", "Wall time of one reconcile.",
                                  ["sync"], buckets=_BUCKETS, registry=r)
        self.api_calls = Counter("reconciler_destination_api_calls_total",
                                 "Destination API requests, by destination, call and outcome.",
                                 ["destination", "call", "outcome"], registry=r)
        self.managed_keys = Gauge("reconciler_managed_keys", "Destination keys in a sync's inventory.",
                                  ["sync"], registry=r)
        self.drift = Counter("reconciler_drift_detected_total",
                             "Destination values found changed out of band (corrected or reported).",
                             ["sync"], registry=r)
        self.last_success = Gauge("reconciler_last_success_timestamp_seconds",
                                  "Unix time of a sync's last successful reconcile.", ["sync"], registry=r)
        self.failing = Gauge("reconciler_sync_failing", "1 while a sync's last reconcile failed.",
                             ["sync"], registry=r)
        self.syncs = Gauge("reconciler_syncs", "Syncs loaded, by state (active, suspended, manual, "
                           "invalid_kept, invalid).", ["state"], registry=r)
        self.notifications = Counter("reconciler_notifications_total",
                                     "Notifier messages, by notifier, event and result (sent, failed, held_back).",
                                     ["notifier", "event", "result"], registry=r)
        self.ready = Gauge("reconciler_ready", "1 once specs are loaded and the first reconcile is done.",
                           registry=r)

    def observe(self, out: Outcome, seconds: float, now: float, managed: int | None) -> None:
        sync = out.sync
        failed = out.failed
        self.reconciles.labels(sync, "failure" if failed else "success").inc()
        self.duration.labels(sync).observe(seconds)
        self.failing.labels(sync).set(1 if failed else 0)
        if not failed:
            self.last_success.labels(sync).set(now)
        if out.plan is not None:
            drifted = len(out.plan.drift) + sum(1 for c in out.plan.changes if c.drift)
            if drifted:
                self.drift.labels(sync).inc(drifted)
        if managed is not None:
            self.managed_keys.labels(sync).set(managed)

    def notification(self, notifier: str, event: str, result: str) -> None:
        self.notifications.labels(notifier, event, result).inc()

    def api_call(self, destination: str, call: str, outcome: str) -> None:
        self.api_calls.labels(destination, call, outcome).inc()

    def forget(self, sync: str) -> None:
        """A removed sync's series go away with it."""
        for metric in (self.duration, self.managed_keys, self.drift, self.last_success, self.failing):
            with contextlib.suppress(KeyError):
                metric.remove(sync)
        for result in ("success", "failure"):
            with contextlib.suppress(KeyError):
                self.reconciles.remove(sync, result)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def count_states(self, states: Iterable[str]) -> None:
        """``reconciler_syncs{state}``: every state shown, zero included (a gauge that stops
        being set would keep its last value)."""
        counts = dict.fromkeys(("active", "suspended", "manual", "disabled", "invalid-kept", "invalid"), 0)
        for state in states:
            counts[state] = counts.get(state, 0) + 1
        for state, n in counts.items():
            self.syncs.labels(state.replace("-", "_")).set(n)
