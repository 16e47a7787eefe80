"""Alembic migrations of the registry database, shipped with the package and run on open."""
