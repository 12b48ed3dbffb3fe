"""One error tree for every destination; SDK errors are translated into it inside each module.

Messages are built by us from error codes and key names, never from response bodies, so no
value a destination echoes back can reach a log or the status store.
"""

from __future__ import annotations


class DestinationError(Exception):
    """Base: a destination call failed. ``key`` names the destination key when there is one."""

    retryable = False

    def __init__(self, message: str, *, key: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
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

    def __init__(self, message: str, *, retry_after: float | None = None, key: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message, key=key, code=code)
        self.retry_after = retry_after


class Transient(DestinationError):
    retryable = True


class Permanent(DestinationError):
    pass


class ConfigError(DestinationError):
    """The connection or destination settings cannot work (missing credential, bad endpoint)."""
