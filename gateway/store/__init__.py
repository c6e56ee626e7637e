"""The durable store: one SQLite file (WAL, synchronous=FULL), versioned migrations.

:class:`gateway.store.db.Database` opens and migrates; the repositories beside it each hold one
kind of data. Secrets are encrypted at rest by :mod:`gateway.store.crypto`.
"""
