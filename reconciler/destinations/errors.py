"""Destination errors: the ``DestinationError`` branch of the one tree (reconciler/errors.py).

SDK errors are translated into these inside each destination module. Messages are built by
us from error codes and key names, never from response bodies, so no value a destination
echoes back can reach a log or the status store.
"""

from __future__ import annotations

from reconciler.errors import ConfigError, ReconcilerError

__all__ = ["AuthError", "ConfigError", "Conflict", "DestinationError", "NotFound", "Permanent", "Throttled",
           "Transient"]


class DestinationError(ReconcilerError):
    """A destination call failed. ``key`` names the destination key when there is one."""

    def __init__(self, message: str, *, key: str | None = None, code: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.key = key
        self.code = code

    def __str__(self) -> str:
        prefix = f"{self.key}: " if self.key else ""
        return f"{prefix}{self.message}"


class NotFound(DestinationError):
    pass


class Conflict(DestinationError):
    pass


class AuthError(DestinationError):
    pass


class Throttled(DestinationError):
    retryable = True


class Transient(DestinationError):
    retryable = True


class Permanent(DestinationError):
    pass
