"""Under the daemon every line on stderr is one JSON object: records from libraries that log
through the standard library (APScheduler, watchfiles, botocore) are passed to structlog,
whose redaction processor sees them too. Only warnings and above: library debug output can
carry request bodies."""

from __future__ import annotations

import logging

from reconciler.logging import get_logger


class _ToStructlog(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            log = get_logger(component=record.name)
            log.log(record.levelno, "library.log", message=record.getMessage())
        except Exception:  # logging must never take the daemon down
            self.handleError(record)


def bridge_stdlib(level: int = logging.WARNING) -> logging.Handler:
    """Route stdlib logging through structlog; returns the handler so it can be removed."""
    handler = _ToStructlog(level)
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level < level:
        root.setLevel(level)
    for noisy in ("watchfiles", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler
