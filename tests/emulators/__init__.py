"""Local emulators of the services reconciler talks to (test infrastructure, never shipped)."""
