"""Connections to the registry database and its migrations.

SQLite (the default) runs in WAL mode with foreign keys on and a busy timeout, and every
write transaction starts with `BEGIN IMMEDIATE`, so two writers queue on the database lock
instead of failing halfway. PostgreSQL needs nothing special: row locks do the same there.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000
MIGRATIONS = "itsacat.registry:migrations"

# Any constant works: it only has to be the same in every process that migrates.
_MIGRATION_LOCK_KEY = 0x17_5AC_A7


def create_registry_engine(url: str) -> Engine:
    """Create an engine for `url`, with the SQLite settings above when it is SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)

    if parsed.database and parsed.database != ":memory:" and not parsed.query.get("uri"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine


def _configure_sqlite_connection(dbapi_connection, connection_record) -> None:
    # pysqlite's own transaction handling would delay BEGIN and ignore IMMEDIATE, so it is
    # switched off and `_begin_sqlite_transaction` issues BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys = ON")
    if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def _begin_sqlite_transaction(connection: Connection) -> None:
    mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


@contextmanager
def write_transaction(engine: Engine):
    """Yield a connection in a transaction that holds the write lock from its first statement.

    On SQLite that is `BEGIN IMMEDIATE`; on PostgreSQL a plain transaction, in which the
    caller takes row locks with `SELECT … FOR UPDATE`.
    """
    with engine.connect() as connection:
        connection = connection.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            yield connection


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema; a no-op when it is there already.

    Several processes may open a fresh registry at once, so the upgrade runs under a lock
    (the SQLite write lock, or a PostgreSQL advisory lock) and the revision is read again
    once the lock is held.
    """
    # Imported here because Alembic takes a noticeable share of the command line's start-up.
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.connect() as connection:
        if MigrationContext.configure(connection).get_current_revision() == head:
            return

    with write_transaction(engine) as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                               {"key": _MIGRATION_LOCK_KEY})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    log.info("registry %s migrated to revision %s", engine.url.render_as_string(), head)
