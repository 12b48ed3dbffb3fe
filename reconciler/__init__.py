"""reconciler: keep secret stores converged on specs kept in git."""

__version__ = "0.1.0"
