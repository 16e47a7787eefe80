"""What the delivery pipeline keeps in the registry database besides executions and stages:
leases (which worker runs an execution, who may promote) and each execution's settings,
frozen when it is created so that a resumed execution runs as it started.

The tables belong to the registry's schema and migrations. Every process that uses the same
registry therefore shares the lock, on SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from itsacat.registry import Registry
from itsacat.registry.database import write_transaction
from itsacat.registry.schema import PipelineExecutionSettings, PipelineLease

leases = PipelineLease.__table__
execution_settings = PipelineExecutionSettings.__table__

PROMOTION_LEASE = "promotion"
LEASE_SECONDS = 60.0


@dataclass(frozen=True)
class Holder:
    """The owner of a lease: one per worker process, unique even when a pid is reused."""

    host: str
    pid: int
    token: str

    @classmethod
    def this_process(cls) -> Holder:
        return cls(socket.gethostname(), os.getpid(), uuid.uuid4().hex[:8])

    @property
    def name(self) -> str:
        return f"{self.host}:{self.pid}:{self.token}"


class LeaseBusy(Exception):
    """Raised when another live process holds the lease; `holder` names it."""

    def __init__(self, name: str, holder: str):
        super().__init__(f"{name} is held by {holder}")
        self.holder = holder


def acquire(registry: Registry, name: str, holder: Holder,
            seconds: float = LEASE_SECONDS) -> None:
    """Take the lease `name` for `seconds`, or renew it; raise `LeaseBusy` when held.

    A lease is free when no process holds it, when it expired, or when its holder ran on this
    host and its process is gone (a worker killed with SIGKILL frees its leases at once).
    The check and the take happen in one write transaction.
    """
    now = datetime.now(UTC).timestamp()
    with write_transaction(registry.engine) as connection:
        row = connection.execute(sa.select(leases).where(leases.c.name == name)
                                 .with_for_update()).first()
        if row is not None and row.holder not in (None, holder.name) and row.expires_at > now \
                and not _holder_dead(row):
            raise LeaseBusy(name, row.holder)
        values = {"holder": holder.name, "host": holder.host, "pid": holder.pid,
                  "expires_at": now + seconds}
        if row is None:
            connection.execute(leases.insert().values(name=name, **values))
        else:
            connection.execute(leases.update().where(leases.c.name == name).values(**values))


def release(registry: Registry, name: str, holder: Holder) -> None:
    """Give the lease back, if `holder` still holds it."""
    with write_transaction(registry.engine) as connection:
        connection.execute(leases.update().where(
            (leases.c.name == name) & (leases.c.holder == holder.name)
        ).values(holder=None, host=None, pid=None, expires_at=0.0))


def lease_holder(registry: Registry, name: str) -> str | None:
    """Return who holds the lease now, or None when it is free."""
    now = datetime.now(UTC).timestamp()
    with registry.engine.connect() as connection:
        row = connection.execute(sa.select(leases).where(leases.c.name == name)).first()
    if row is None or row.holder is None or row.expires_at <= now or _holder_dead(row):
        return None
    return row.holder


def execution_lease(execution_id: str) -> str:
    return f"execution:{execution_id}"


def save_settings(registry: Registry, execution_id: str, settings: dict[str, Any]) -> None:
    """Store the settings an execution runs with; written once, when it is created."""
    with write_transaction(registry.engine) as connection:
        connection.execute(execution_settings.insert().values(
            execution_id=execution_id, settings=json.dumps(settings, sort_keys=True)))


def load_settings(registry: Registry, execution_id: str) -> dict[str, Any] | None:
    with registry.engine.connect() as connection:
        text = connection.execute(sa.select(execution_settings.c.settings).where(
            execution_settings.c.execution_id == execution_id)).scalar()
    return None if text is None else json.loads(text)


def _holder_dead(row: sa.Row) -> bool:
    if row.host != socket.gethostname() or row.pid is None:
        return False
    try:
        os.kill(row.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    # NOTE: a pid reused by an unrelated process keeps the lease until it expires.
    return False
