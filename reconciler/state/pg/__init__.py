"""The PostgreSQL state backend: the state replicas share (see docs/high-availability.md).

psycopg is imported only here and only when a ``postgresql://`` state URL is used, so the
default (SQLite) install needs none of it: ``pip install 'reconciler[postgres]'``.
"""
