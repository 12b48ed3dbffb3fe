"""One error tree for the whole of reconciler (the httpx ``_exceptions`` way).

Every failure we expect — bad input, a service saying no, a damaged state — is one of these;
anything else is a bug. Messages are built by us from codes, names and paths, never from a
response body or a YAML token, so no value can reach a log, a status or a terminal through one.

    ReconcilerError                 .retry_after: seconds the other side asked us to wait
    ├── ConfigError                 a spec, connection or setting cannot work as written
    │   └── CredentialError         a credential reference cannot be resolved
    ├── SourceError                 reading or writing a source failed (sources/)
    ├── DestinationError            a destination call failed; .key, .code (destinations/errors.py)
    │   ├── NotFound
    │   ├── Conflict
    │   ├── AuthError
    │   ├── Throttled               retryable
    │   ├── Transient               retryable
    │   └── Permanent
    ├── DeadlineExceeded            a sync run passed its deadline while retrying (retryable)
    ├── Interrupted                 a sync run was asked to stop (Ctrl-C) while it would retry
    ├── StateError                  the state store cannot be read or written
    └── WebhookError                a webhook request is refused (unsigned, stale, malformed)
"""

from __future__ import annotations


class ReconcilerError(Exception):
    """Root. ``retry_after`` is set when the failing side said how long to wait."""

    retryable: bool = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message


class ConfigError(ReconcilerError):
    """A spec, connection or setting cannot work as written (missing credential, bad endpoint)."""


class CredentialError(ConfigError):
    """A credential reference cannot be resolved (unset variable, unreadable file)."""


class SourceError(ReconcilerError):
    """Reading or writing a source failed."""


class DeadlineExceeded(ReconcilerError):
    """A sync run passed its deadline while waiting to retry: the next run tries again."""

    retryable = True


class Interrupted(ReconcilerError):
    """The run was asked to stop (Ctrl-C, SIGTERM) and was about to wait and try again."""


class StateError(ReconcilerError):
    """The state store cannot be read or written."""


class WebhookError(ReconcilerError):
    """A webhook request is refused: not validly signed, stale, or malformed."""


class WebhookPayloadError(WebhookError):
    """A validly signed webhook whose payload is not one we understand: the sender is who it
    says, so it hears "bad request", not "unauthorized" (it would look for a wrong secret)."""
