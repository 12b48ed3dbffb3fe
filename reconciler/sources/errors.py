"""Source errors. Messages name the file/line or endpoint, never a value."""

from __future__ import annotations


class SourceError(Exception):
    """The source could not be read (or written, for an import). Nothing is deleted then."""
