"""structlog set-up: stable event names, console or JSON lines, and a redaction processor.

Event names are a public interface (alerts and dashboards match on them):
``spec.loaded``, ``spec.invalid``, ``plan.computed``, ``change.applied``, ``change.failed``,
``sync.succeeded``, ``sync.failed``, ``drift.detected``, ``import.applied``, ``remove.applied``.
"""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Mapping, MutableMapping
from typing import Any, Final, TextIO

from reconciler.model import REDACTED, SecretValue


def _import_structlog() -> Any:
    """structlog without rich: structlog picks rich up for pretty tracebacks when it is
    installed (a dev tool brings it in), which costs a CLI start-up a tenth of a second and
    gains us nothing — we never print a traceback. Hidden only while structlog imports."""
    hide = "rich" not in sys.modules
    if hide:
        sys.modules["rich"] = None  # type: ignore[assignment]  # makes `import rich` fail
    try:
        import structlog as module
    finally:
        if hide:
            del sys.modules["rich"]
    return module


structlog = _import_structlog()

#: field names whose values are always dropped from log events, whatever they hold
SENSITIVE_FIELDS: Final = frozenset(
    {
        "value",
        "values",
        "secret",
        "secret_value",
        "password",
        "token",
        "access_token",
        "clientSecret",
        "client_secret",
        "secretAccessKey",
        "sessionToken",
        "privateKey",
        "private_key",
        "authorization",
    }
)


def _scrub(obj: Any, depth: int = 0) -> Any:
    if isinstance(obj, SecretValue):
        return REDACTED
    if depth > 6:
        return obj
    if isinstance(obj, Mapping):
        return {
            k: (REDACTED if k in SENSITIVE_FIELDS else _scrub(v, depth + 1)) for k, v in obj.items()
        }
    if isinstance(obj, list | tuple | set | frozenset):
        return type(obj)(_scrub(v, depth + 1) for v in obj) if not isinstance(obj, tuple) else tuple(
            _scrub(v, depth + 1) for v in obj
        )
    return obj


def redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Drop secret values from an event, wherever they hide."""
    for k in list(event_dict):
        if k in SENSITIVE_FIELDS:
            event_dict[k] = REDACTED
        else:
            event_dict[k] = _scrub(event_dict[k])
    return event_dict


def configure(fmt: str = "console", level: str = "info", stream: TextIO | None = None) -> None:
    """Configure structlog once per process. Logs go to stderr; stdout is for results."""
    out = stream or sys.stderr
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False, pad_event_to=0)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
        redact,
    ]
    if fmt == "json":
        processors.append(structlog.processors.format_exc_info)
    processors.append(renderer)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


def get_logger(**bound: Any) -> Any:
    return structlog.get_logger("reconciler").bind(**bound)


def current_run_id() -> str:
    """The run id bound by the caller (the daemon binds one per run, so its events and the
    engine's share it), else a fresh one."""
    bound = structlog.contextvars.get_contextvars().get("run_id")
    return bound if isinstance(bound, str) else uuid.uuid4().hex[:12]
