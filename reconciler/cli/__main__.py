"""``python -m reconciler.cli``."""

from reconciler.cli import entry

entry()
