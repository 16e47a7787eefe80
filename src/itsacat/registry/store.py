"""The registry: runs, model versions, slots, pipeline executions and approvals in one
database, and the model artifacts in a content-addressed store beside it.

Every method is one transaction. Slot changes are compare-and-swap: the caller states which
model version it expects the slot to contain. The check and the change happen under one
lock, the slot's row lock on PostgreSQL and the write lock of `BEGIN IMMEDIATE` on SQLite, so
two promoters racing for the same slot cannot both win and no change is lost. Model versions
are immutable: nothing here updates or deletes one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from itsacat.data import IMAGE_SIZE
from itsacat.nn import Model
from itsacat.registry import database
from itsacat.registry.artifacts import ArtifactStore
from itsacat.registry.entities import (
    Approval,
    Execution,
    ModelVersion,
    Run,
    SlotChange,
    SlotState,
    Stage,
)
from itsacat.registry.errors import RegistryError, SlotConflict, describe_version
from itsacat.registry.schema import (
    SLOT_NAMES,
    ApprovalDecision,
    ExecutionStatus,
    RunStatus,
    SlotAction,
    StageStatus,
)
from itsacat.registry.schema import Approval as ApprovalRow
from itsacat.registry.schema import ModelVersion as ModelVersionRow
from itsacat.registry.schema import PipelineExecution as ExecutionRow
from itsacat.registry.schema import PipelineStage as StageRow
from itsacat.registry.schema import Run as RunRow
from itsacat.registry.schema import RunEpoch as RunEpochRow
from itsacat.registry.schema import Slot as SlotRow
from itsacat.registry.schema import SlotChangeRecord as SlotChangeRow

log = logging.getLogger(__name__)

# `rollback(expected=ANY_VERSION)` skips the compare-and-swap check; None means "empty slot".
ANY_VERSION = object()

runs = RunRow.__table__
run_epochs = RunEpochRow.__table__
model_versions = ModelVersionRow.__table__
slots = SlotRow.__table__
slot_changes = SlotChangeRow.__table__
executions = ExecutionRow.__table__
stages = StageRow.__table__
approvals = ApprovalRow.__table__

# The input preprocessing of every model version, as `itsacat.data.images` implements it.
PREPROCESSING = {"image_size": [IMAGE_SIZE, IMAGE_SIZE], "channels": "RGB", "dtype": "uint8",
                 "layout": "flatten (height, width, channel) into one column",
                 "scale": 1 / 255}

# A running run whose heartbeat is older than this is taken to have died. The recorder beats
# every `recorder.HEARTBEAT_SECONDS`, so only a dead process (or a registry unreachable for
# this long) misses it.
STALE_HEARTBEAT = timedelta(minutes=10)
FINISHED_STAGES = (StageStatus.passed, StageStatus.failed, StageStatus.skipped)


class Registry:
    """The registry of one itsacat home: a database and the artifacts under `artifacts_root`.

    Create it with `open_registry`, which migrates the schema first. A registry keeps a
    connection pool, so close it (or use it as a context manager) when done.
    """

    def __init__(self, engine: sa.Engine, artifacts: ArtifactStore):
        self.engine = engine
        self.artifacts = artifacts

    def migrate(self) -> None:
        """Create or upgrade the database schema to the newest migration."""
        with self._errors_named("open"):
            database.migrate(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # Runs

    def start_run(self, run_id: str, *, spec: dict[str, Any], folder: str | Path,
                  dataset_digest: str, dataset_source: str, engine: str,
                  code_version: str) -> Run:
        """Record that run `run_id` starts, or resumes, training in this process."""
        now = _now()
        values = {"status": RunStatus.running, "host": socket.gethostname(),
                  "pid": os.getpid(), "heartbeat_at": now, "finished_at": None,
                  "message": None, "folder": str(folder), "code_version": code_version}
        with self._write("record the start of a run") as connection:
            updated = connection.execute(
                runs.update().where(runs.c.id == run_id).values(**values)).rowcount
            if not updated:
                connection.execute(runs.insert().values(
                    id=run_id, spec=spec, dataset_digest=dataset_digest,
                    dataset_source=dataset_source, engine=engine,
                    strategy=spec.get("strategy"), seed=spec.get("seed"), started_at=now,
                    epochs_completed=0, **values))
        return self.get_run(run_id)

    def record_epochs(self, run_id: str, first_epoch: int, costs: list[float],
                      training_seconds: float) -> None:
        """Store the costs of epochs `first_epoch`, `first_epoch + 1`, … and the heartbeat.

        Costs recorded earlier for `first_epoch` and later epochs are replaced, because a
        resumed run repeats the epochs after its checkpoint and its new costs win.
        """
        with self._write("record epochs") as connection:
            connection.execute(run_epochs.delete().where(
                (run_epochs.c.run_id == run_id) & (run_epochs.c.epoch >= first_epoch)))
            if costs:
                connection.execute(run_epochs.insert(), [
                    {"run_id": run_id, "epoch": first_epoch + i, "cost": cost}
                    for i, cost in enumerate(costs)])
            values: dict[str, Any] = {"heartbeat_at": _now(),
                                      "training_seconds": training_seconds}
            if costs:
                values |= {"epochs_completed": first_epoch + len(costs),
                           "final_cost": costs[-1]}
            connection.execute(runs.update().where(runs.c.id == run_id).values(**values))

    def beat(self, run_id: str) -> None:
        """Record that the process training `run_id` is still alive."""
        with self._write("record a heartbeat") as connection:
            connection.execute(runs.update().where(
                (runs.c.id == run_id) & (runs.c.status == RunStatus.running)
            ).values(heartbeat_at=_now()))

    def finish_run(self, run_id: str, *, metrics: dict[str, Any], training_seconds: float,
                   stopped_early: bool, epochs_completed: int, final_cost: float | None) -> Run:
        """Mark the run completed with its final metrics."""
        now = _now()
        with self._write("record the end of a run") as connection:
            connection.execute(runs.update().where(runs.c.id == run_id).values(
                status=RunStatus.completed, metrics=metrics, heartbeat_at=now,
                finished_at=now, training_seconds=training_seconds,
                epochs_completed=epochs_completed, final_cost=final_cost,
                stopped_early=stopped_early, message=None))
        return self.get_run(run_id)

    def stop_run(self, run_id: str, status: RunStatus, message: str) -> Run:
        """Mark a running run failed or interrupted, saying why."""
        if status not in (RunStatus.failed, RunStatus.interrupted):
            raise ValueError(f"a run stops as failed or interrupted, not {status}")
        now = _now()
        with self._write("record the end of a run") as connection:
            connection.execute(runs.update().where(runs.c.id == run_id).values(
                status=status, message=message, heartbeat_at=now, finished_at=now))
        return self.get_run(run_id)

    def import_run(self, results: dict[str, Any], spec: dict[str, Any], folder: str | Path
                   ) -> Run:
        """Record a completed run from its folder's results.json, when `train` did not.

        Returns the run as recorded; a run already in the registry is left as it is.
        """
        info = results["run"]
        with contextlib.suppress(RegistryError):
            return self.get_run(info["id"])
        costs = [results[f"epoch{epoch}"]["cost"] for epoch in range(info["epochs_completed"])]
        started = _parse_time(results.get("Start"))
        with self._write("record a run from its folder") as connection:
            connection.execute(runs.insert().values(
                id=info["id"], status=RunStatus.completed, folder=str(folder), spec=spec,
                dataset_digest=info.get("dataset_digest"), dataset_source=info.get("dataset"),
                engine=info.get("engine"), strategy=info.get("strategy"),
                seed=info.get("seed"), code_version=info.get("code_version"),
                epochs_completed=len(costs), final_cost=info.get("final_cost"),
                stopped_early=info.get("stopped_early"),
                training_seconds=info.get("training_seconds"),
                metrics=results.get("metrics"), started_at=started or _now(),
                finished_at=_parse_time(results.get("End"))))
            if costs:
                connection.execute(run_epochs.insert(), [
                    {"run_id": info["id"], "epoch": epoch, "cost": cost}
                    for epoch, cost in enumerate(costs)])
        return self.get_run(info["id"])

    def get_run(self, run_id: str) -> Run:
        """Return the run whose id is `run_id`, or starts with it when only one does.

        Raises `RegistryError` (code `run_not_found`) when no run matches.
        """
        with self._read() as connection:
            rows = connection.execute(sa.select(runs).where(
                runs.c.id.startswith(run_id, autoescape=True)).limit(2)).all()
            exact = [row for row in rows if row.id == run_id]
            if not exact and len(rows) > 1:
                raise RegistryError("ambiguous_run", f"run id {run_id!r} matches several "
                                    "runs; give more of it (see itsacat runs list)")
            if not rows:
                raise RegistryError("run_not_found", f"run {run_id!r} not found in the "
                                    "registry; see itsacat runs list")
            row = exact[0] if exact else rows[0]
            costs = connection.execute(sa.select(run_epochs.c.cost).where(
                run_epochs.c.run_id == row.id).order_by(run_epochs.c.epoch)).scalars().all()
        return _record(Run, row, costs=tuple(costs))

    def list_runs(self, status: RunStatus | None = None, limit: int = 50) -> list[Run]:
        """Return the newest runs first, at most `limit`, optionally only those in `status`.

        Running runs whose process is gone are marked interrupted first. The runs carry no
        per-epoch costs (`costs` is None); `get_run` returns them.
        """
        self.reap_dead_runs()
        query = sa.select(runs).order_by(runs.c.started_at.desc(), runs.c.id).limit(limit)
        if status is not None:
            query = query.where(runs.c.status == RunStatus(status))
        with self._read() as connection:
            return [_record(Run, row) for row in connection.execute(query)]

    def reap_dead_runs(self) -> list[str]:
        """Mark running runs whose process is gone as interrupted; return their ids.

        A run is gone when it ran on this host and its process id no longer exists, or when
        its heartbeat is older than `STALE_HEARTBEAT` (any host).
        """
        host, now = socket.gethostname(), _now()
        with self._read() as connection:
            running = connection.execute(sa.select(
                runs.c.id, runs.c.host, runs.c.pid, runs.c.heartbeat_at, runs.c.folder,
                runs.c.epochs_completed).where(runs.c.status == RunStatus.running)).all()

        reaped = []
        for run in running:
            reason = _death_of(run, host, now)
            if reason is None:
                continue
            message = (f"{reason} after {run.epochs_completed} recorded epochs; resume it with "
                       f"itsacat train --resume {run.folder}")
            with self._write("mark a dead run interrupted") as connection:
                # The status condition keeps a run that finished meanwhile as it is.
                changed = connection.execute(runs.update().where(
                    (runs.c.id == run.id) & (runs.c.status == RunStatus.running)
                ).values(status=RunStatus.interrupted, message=message, finished_at=now)
                ).rowcount
            if changed:
                log.warning("run %s: marked interrupted: %s", run.id, message)
                reaped.append(run.id)
        return reaped

    # Model versions

    def register_model(self, model: Model, *, run_id: str | None = None,
                       dataset_digest: str | None = None, metrics: dict | None = None,
                       source: str = "run") -> ModelVersion:
        """Store `model` as a content-addressed artifact and record a new model version.

        Registering the same model from the same run and source again returns the version
        recorded the first time, so a retried registration does not add a duplicate.
        Raises `RegistryError` (`run_not_found`) when `run_id` is not a recorded run.
        """
        if run_id is not None:
            run = self.get_run(run_id)
            run_id, dataset_digest = run.id, dataset_digest or run.dataset_digest
        digest = self.artifacts.put_model(model)

        with self._write("register a model version") as connection:
            if connection.dialect.name == "postgresql":
                # Two registrations of the same model would otherwise both miss the other's
                # uncommitted row; SQLite's BEGIN IMMEDIATE already serializes them.
                connection.execute(sa.text(
                    "LOCK TABLE model_versions IN SHARE ROW EXCLUSIVE MODE"))
            existing = connection.execute(sa.select(model_versions).where(
                (model_versions.c.artifact_sha256 == digest)
                & model_versions.c.run_id.is_not_distinct_from(run_id)
                & (model_versions.c.source == source)).order_by(model_versions.c.id)
            ).first()
            if existing is not None:
                return _model_version(existing)
            version_id = connection.execute(model_versions.insert().values(
                artifact_sha256=digest, spec=model.spec.to_json(),
                class_names=list(model.class_names), preprocessing=PREPROCESSING,
                metrics=metrics or {}, run_id=run_id, dataset_digest=dataset_digest,
                source=source, created_at=_now()).returning(model_versions.c.id)
            ).scalar_one()
        log.info("registered model version %d (source %s, run %s, sha256 %s)", version_id,
                 source, run_id, digest[:12])
        return self.get_version(version_id)

    def get_version(self, version_id: int) -> ModelVersion:
        """Return model version `version_id`; raises `RegistryError` (`version_not_found`)."""
        with self._read() as connection:
            row = connection.execute(sa.select(model_versions).where(
                model_versions.c.id == version_id)).first()
        if row is None:
            raise _version_not_found(version_id)
        return _model_version(row)

    def list_versions(self, limit: int = 50) -> list[ModelVersion]:
        """Return the newest model versions first, at most `limit`."""
        query = sa.select(model_versions).order_by(model_versions.c.id.desc()).limit(limit)
        with self._read() as connection:
            return [_model_version(row) for row in connection.execute(query)]

    def load_model(self, version: ModelVersion | int) -> Model:
        """Load a model version, ready to predict, from its artifact.

        The artifact's sha256 is checked first: `ArtifactCorrupted` names the file when it
        does not match.
        """
        if not isinstance(version, ModelVersion):
            version = self.get_version(version)
        return self.artifacts.load_model(version.artifact_sha256)

    # Slots

    def slot(self, name: str) -> ModelVersion | None:
        """Return the model version that slot `name` serves, or None when it is empty."""
        state = self.slot_state(name)
        return None if state.version_id is None else self.get_version(state.version_id)

    def slot_state(self, name: str) -> SlotState:
        """Return slot `name`'s version, previous version and generation in one cheap query."""
        name = check_slot(name)
        with self._read() as connection:
            row = connection.execute(sa.select(slots).where(slots.c.name == name)).one()
        return _record(SlotState, row)

    def promote(self, version_id: int, slot: str, *, expected: int | None, by: str,
                reason: str) -> SlotChange:
        """Point `slot` at model version `version_id`, provided it still contains `expected`.

        `expected` is a version id, or None for an empty slot. The slot's old version is
        kept as its previous version, for `rollback`. Raises `SlotConflict` naming the slot's
        version when it is not `expected`, and `RegistryError` for an unknown
        version (`version_not_found`) or a version the slot already holds
        (`already_in_slot`); the slot is then left as it is.
        """
        slot = check_slot(slot)
        with self._write(f"promote model version {version_id} to {slot}") as connection:
            if connection.execute(sa.select(model_versions.c.id).where(
                    model_versions.c.id == version_id)).first() is None:
                raise _version_not_found(version_id)
            state = _lock_slot(connection, slot)
            if state.version_id != expected:
                raise SlotConflict(slot, expected, state.version_id)
            if state.version_id == version_id:
                raise RegistryError("already_in_slot", f"model version {version_id} is "
                                    f"already in slot {slot}; nothing to promote")
            change = _move_slot(connection, state, version_id, state.version_id,
                                SlotAction.promote, by, reason)
        log.info("slot %s: %s -> %s by %s, reason %r", slot, describe_version(expected),
                 describe_version(version_id), by, reason)
        return change

    def rollback(self, slot: str, *, by: str, reason: str,
                 expected: int | None | object = ANY_VERSION) -> SlotChange:
        """Put `slot` back to its previous version; the version it leaves becomes previous.

        Rolling back twice therefore returns to where the first rollback started. With
        `expected` (a version id, or None for an empty slot) this is a compare-and-swap like
        `promote`: it raises `SlotConflict` when the slot no longer holds that version, so a
        rollback decided before someone else's promotion cannot undo it. Raises
        `RegistryError` (`nothing_to_roll_back`) when the slot has no previous version.
        """
        slot = check_slot(slot)
        with self._write(f"roll back slot {slot}") as connection:
            state = _lock_slot(connection, slot)
            if expected is not ANY_VERSION and state.version_id != expected:
                raise SlotConflict(slot, expected, state.version_id)
            if state.previous_version_id is None:
                raise RegistryError("nothing_to_roll_back", f"slot {slot} has no previous "
                                    "model version to roll back to; promote a version "
                                    "instead")
            change = _move_slot(connection, state, state.previous_version_id,
                                state.version_id, SlotAction.rollback, by, reason)
        log.info("slot %s: rolled back from %s to %s by %s, reason %r", slot,
                 describe_version(change.from_version_id),
                 describe_version(change.to_version_id), by, reason)
        return change

    def slot_history(self, slot: str | None = None, limit: int = 50) -> list[SlotChange]:
        """Return the audit log of slot changes, newest first, for one slot or both."""
        query = sa.select(slot_changes).order_by(slot_changes.c.id.desc()).limit(limit)
        if slot is not None:
            query = query.where(slot_changes.c.slot == check_slot(slot))
        with self._read() as connection:
            return [_slot_change(row) for row in connection.execute(query)]

    # Pipeline executions, stages and approvals

    def create_execution(self, trigger: str, *, data_path: str | None = None,
                         model_version_id: int | None = None,
                         stage_names: tuple[str, ...] = (),
                         execution_id: str | None = None) -> Execution:
        """Record a new pass of the delivery pipeline, pending, with its stages waiting."""
        execution_id = execution_id or uuid.uuid4().hex[:12]
        now = _now()
        with self._write("create a pipeline execution") as connection:
            connection.execute(executions.insert().values(
                id=execution_id, status=ExecutionStatus.pending, trigger=trigger,
                data_path=data_path, model_version_id=model_version_id, created_at=now,
                updated_at=now))
            if stage_names:
                connection.execute(stages.insert(), [
                    {"execution_id": execution_id, "name": name, "position": position,
                     "status": StageStatus.waiting, "log": ""}
                    for position, name in enumerate(stage_names)])
        return self.get_execution(execution_id)

    def update_execution(self, execution_id: str, *, status: ExecutionStatus | None = None,
                         model_version_id: int | None = None) -> Execution:
        """Change an execution's status or model version; None leaves a field as it is."""
        values: dict[str, Any] = {"updated_at": _now()}
        if status is not None:
            values["status"] = ExecutionStatus(status)
        if model_version_id is not None:
            values["model_version_id"] = model_version_id
        with self._write("update a pipeline execution") as connection:
            if not connection.execute(executions.update().where(
                    executions.c.id == execution_id).values(**values)).rowcount:
                raise _execution_not_found(execution_id)
        return self.get_execution(execution_id)

    def upsert_stage(self, execution_id: str, name: str, status: StageStatus, *,
                     log: str | None = None, outcome: dict[str, Any] | None = None) -> Stage:
        """Set a stage's status, creating the stage if needed; stamp its start and finish.

        `log` and `outcome` replace what the stage stored when given. `started_at` is set
        when the stage becomes running (a stage that is already running keeps its start), and
        `finished_at` when it passes, fails or is skipped.
        """
        status, now = StageStatus(status), _now()
        values: dict[str, Any] = {"status": status}
        if status == StageStatus.running:
            values |= {"finished_at": None, "started_at": sa.case(
                (stages.c.status == StageStatus.running, stages.c.started_at), else_=now)}
        elif status in FINISHED_STAGES:
            values["finished_at"] = now
        if log is not None:
            values["log"] = log
        if outcome is not None:
            values["outcome"] = outcome

        where = (stages.c.execution_id == execution_id) & (stages.c.name == name)
        with self._write(f"record stage {name}") as connection:
            if connection.execute(sa.select(executions.c.id).where(
                    executions.c.id == execution_id).with_for_update()).first() is None:
                raise _execution_not_found(execution_id)
            if not connection.execute(stages.update().where(where).values(**values)).rowcount:
                position = connection.execute(sa.select(sa.func.count()).where(
                    stages.c.execution_id == execution_id)).scalar_one()
                started = {"started_at": now} if status == StageStatus.running else {}
                connection.execute(stages.insert().values(
                    {"execution_id": execution_id, "name": name, "position": position,
                     "log": ""} | values | started))
            connection.execute(executions.update().where(executions.c.id == execution_id)
                               .values(updated_at=now))
            row = connection.execute(sa.select(stages).where(where)).one()
        return _record(Stage, row)

    def get_execution(self, execution_id: str) -> Execution:
        """Return an execution with its stages and approvals; raises `execution_not_found`."""
        with self._read() as connection:
            row = connection.execute(sa.select(executions).where(
                executions.c.id == execution_id)).first()
            if row is None:
                raise _execution_not_found(execution_id)
            stage_rows = connection.execute(sa.select(stages).where(
                stages.c.execution_id == execution_id).order_by(stages.c.position)).all()
            approval_rows = connection.execute(sa.select(approvals).where(
                approvals.c.execution_id == execution_id).order_by(approvals.c.id)).all()
        return _record(Execution, row,
                       stages=tuple(_record(Stage, stage) for stage in stage_rows),
                       approvals=tuple(_approval(approval) for approval in approval_rows))

    def list_executions(self, status: ExecutionStatus | None = None, limit: int = 50
                        ) -> list[Execution]:
        """Return the newest executions first, without their stages and approvals."""
        query = (sa.select(executions)
                 .order_by(executions.c.created_at.desc(), executions.c.id).limit(limit))
        if status is not None:
            query = query.where(executions.c.status == ExecutionStatus(status))
        with self._read() as connection:
            return [_record(Execution, row) for row in connection.execute(query)]

    def record_approval(self, execution_id: str, decision: ApprovalDecision, *, by: str,
                        reason: str) -> Approval:
        """Record who decided, when and why, whether `execution_id` may promote."""
        values = {"execution_id": execution_id, "decision": ApprovalDecision(decision),
                  "decided_by": by, "reason": reason, "decided_at": _now()}
        with self._write("record an approval") as connection:
            if connection.execute(sa.select(executions.c.id).where(
                    executions.c.id == execution_id)).first() is None:
                raise _execution_not_found(execution_id)
            approval_id = connection.execute(approvals.insert().values(**values).returning(
                approvals.c.id)).scalar_one()
        return Approval(approval_id, execution_id, values["decision"], by, reason,
                        values["decided_at"])

    # Transactions

    @contextlib.contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self._errors_named("read"), self.engine.connect() as connection:
            yield connection

    @contextlib.contextmanager
    def _write(self, attempted: str) -> Iterator[sa.Connection]:
        with self._errors_named(attempted), database.write_transaction(self.engine) as conn:
            yield conn

    @contextlib.contextmanager
    def _errors_named(self, attempted: str) -> Iterator[None]:
        """Turn a database that cannot be reached or written into one clear error."""
        try:
            yield
        except sa.exc.OperationalError as error:
            url = self.engine.url.render_as_string(hide_password=True)
            raise RegistryError(
                "registry_unavailable", f"cannot {attempted} in the registry {url}: "
                f"{error.orig}; check that the database is reachable and writable "
                "(ITSACAT_REGISTRY_URL, ITSACAT_HOME)") from None


def check_slot(name: str) -> str:
    """Return `name` when it is a slot; raise `RegistryError` (`invalid_slot`) otherwise."""
    if name not in SLOT_NAMES:
        raise RegistryError("invalid_slot", f"slot {name!r} does not exist; choose one of "
                            f"{', '.join(SLOT_NAMES)}")
    return name


def _lock_slot(connection: sa.Connection, slot: str) -> SlotState:
    # FOR UPDATE makes a second promoter on PostgreSQL wait here until the first commits,
    # then read what the first wrote; SQLite ignores it and relies on BEGIN IMMEDIATE.
    row = connection.execute(sa.select(slots).where(slots.c.name == slot)
                             .with_for_update()).one()
    return _record(SlotState, row)


def _move_slot(connection: sa.Connection, state: SlotState, target: int,
               previous: int | None, action: SlotAction, by: str, reason: str) -> SlotChange:
    """Point the locked slot at `target` and write the audit row, in the caller's transaction."""
    now, generation = _now(), state.generation + 1
    # The generation condition would catch a writer that bypassed the lock; under the lock
    # it always holds.
    moved = connection.execute(slots.update().where(
        (slots.c.name == state.name) & (slots.c.generation == state.generation)
    ).values(version_id=target, previous_version_id=previous, generation=generation,
             updated_at=now)).rowcount
    if moved != 1:
        raise RuntimeError(f"slot {state.name} changed while locked; the database does not "
                           "honour the registry's locking")
    change_id = connection.execute(slot_changes.insert().values(
        slot=state.name, action=action, from_version_id=state.version_id,
        to_version_id=target, generation=generation, changed_by=by, reason=reason,
        changed_at=now).returning(slot_changes.c.id)).scalar_one()
    return SlotChange(change_id, state.name, action, state.version_id, target, generation, by,
                      reason, now)


def _death_of(run: sa.Row, host: str, now: datetime) -> str | None:
    """Return why a running run is dead, or None when it may still be alive."""
    if run.host == host and run.pid is not None and not _process_alive(run.pid):
        return f"process {run.pid} on {run.host} ended without reporting (killed?)"
    if run.heartbeat_at is None or now - run.heartbeat_at > STALE_HEARTBEAT:
        return (f"process {run.pid} on {run.host} sent no heartbeat for more than "
                f"{int(STALE_HEARTBEAT.total_seconds() // 60)} minutes")
    return None


def _process_alive(pid: int) -> bool:
    # NOTE: a process id reused by an unrelated process after a kill hides the run's death
    # until that process ends or the heartbeat goes stale.
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def _record(cls, row: sa.Row, **extra: Any):
    """Build the record `cls` from the row's columns of the same names, plus `extra`."""
    mapping = row._mapping
    return cls(**{field.name: mapping[field.name] for field in fields(cls)
                  if field.name in mapping} | extra)


def _model_version(row: sa.Row) -> ModelVersion:
    return _record(ModelVersion, row, class_names=tuple(row.class_names))


def _slot_change(row: sa.Row) -> SlotChange:
    return SlotChange(row.id, row.slot, SlotAction(row.action), row.from_version_id,
                      row.to_version_id, row.generation, row.changed_by, row.reason,
                      row.changed_at)


def _approval(row: sa.Row) -> Approval:
    return Approval(row.id, row.execution_id, ApprovalDecision(row.decision), row.decided_by,
                    row.reason, row.decided_at)


def _version_not_found(version_id: int) -> RegistryError:
    return RegistryError("version_not_found", f"model version {version_id} not found in the "
                         "registry; see itsacat models list")


def _execution_not_found(execution_id: str) -> RegistryError:
    return RegistryError("execution_not_found", f"pipeline execution {execution_id!r} not "
                         "found in the registry; see itsacat pipeline status")


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)
