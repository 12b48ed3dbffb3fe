"""Source errors. Messages name the file/line or endpoint, never a value."""

from __future__ import annotations

from reconciler.errors import SourceError

__all__ = ["SourceError"]
