"""Fixtures for the registry tests: one registry per test, on SQLite and on PostgreSQL.

PostgreSQL tests run against 127.0.0.1:5432 (trust authentication, database `test`), each in
a schema of its own that is dropped afterwards. They skip when no server responds there.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from itsacat.nn import Model, initialize
from itsacat.registry import open_registry
from itsacat.settings import Settings

POSTGRES_HOST, POSTGRES_PORT, POSTGRES_DATABASE = "127.0.0.1", 5432, "test"
POSTGRES_USERS = ("root", "postgres")


def _postgres_user() -> str | None:
    """Return a user that PostgreSQL on 127.0.0.1:5432 accepts, or None when none responds."""
    import psycopg

    for user in POSTGRES_USERS:
        try:
            with psycopg.connect(host=POSTGRES_HOST, port=POSTGRES_PORT, user=user,
                                 dbname=POSTGRES_DATABASE, connect_timeout=3):
                return user
        except psycopg.OperationalError:
            continue
    return None


@pytest.fixture(scope="session")
def postgres_user() -> str:
    user = _postgres_user()
    if user is None:
        pytest.skip(f"no PostgreSQL connection on {POSTGRES_HOST}:{POSTGRES_PORT} (database "
                    f"{POSTGRES_DATABASE!r}, users {', '.join(POSTGRES_USERS)}); start a server "
                    "there to run the PostgreSQL registry tests")
    return user


@pytest.fixture
def postgres_url(postgres_user: str):
    """A registry URL whose tables live in a fresh schema, dropped after the test."""
    import psycopg

    schema = f"itsacat_test_{uuid.uuid4().hex[:12]}"
    conninfo = dict(host=POSTGRES_HOST, port=POSTGRES_PORT, user=postgres_user,
                    dbname=POSTGRES_DATABASE)
    with psycopg.connect(**conninfo, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    yield (f"postgresql+psycopg://{postgres_user}@{POSTGRES_HOST}:{POSTGRES_PORT}/"
           f"{POSTGRES_DATABASE}?options=-csearch_path%3D{schema}")
    with psycopg.connect(**conninfo, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def settings(backend: str, tmp_path: Path, request) -> Settings:
    """Settings of a fresh itsacat home whose registry uses `backend`."""
    home = tmp_path / "home"
    if backend == "postgresql":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{home / 'registry.db'}"
    return Settings(home=home, registry_url=url, param_store="memory")


@pytest.fixture
def registry(settings: Settings):
    with open_registry(settings) as opened:
        yield opened


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment variables that lead a subprocess to the same registry."""
    return {"ITSACAT_HOME": str(settings.home), "ITSACAT_REGISTRY_URL": settings.registry_url}


def make_model(small_spec, seed: int = 0) -> Model:
    """A small untrained model on 64×64 RGB input; different seeds give different weights."""
    spec = small_spec.with_overrides(seed=seed)
    return Model(spec, initialize(spec, 64 * 64 * 3), ("non-cat", "cat"))
