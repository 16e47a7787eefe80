"""The registry's tables as SQLAlchemy ORM classes, and the enums of their states.

The schema itself is created and changed only by the Alembic migrations in `migrations/`;
these classes must describe the same tables (a test compares them).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

SLOT_NAMES = ("blue", "green")


class RunStatus(enum.StrEnum):
    """The state of a training run."""

    pending = "pending"  # recorded before its first epoch (reserved; `train` starts running)
    running = "running"  # `run_started` was received; epochs and heartbeats follow
    completed = "completed"  # `run_finished`: the model was evaluated and the folder written
    failed = "failed"  # `run_stopped` with an error raised by the run (divergence, bad data…)
    interrupted = "interrupted"  # Ctrl-C or SIGTERM, or found dead: process gone, stale heartbeat


class ExecutionStatus(enum.StrEnum):
    """The state of one pass of the delivery pipeline."""

    pending = "pending"  # created by a trigger; no stage has started yet
    running = "running"  # a stage is running
    awaiting_approval = "awaiting_approval"  # the gates passed; a decision is needed to promote
    succeeded = "succeeded"  # every stage passed or was skipped
    failed = "failed"  # a stage failed or the approval was rejected
    interrupted = "interrupted"  # the process running it stopped; a restart resumes it


class StageStatus(enum.StrEnum):
    """The state of one stage of a pipeline execution."""

    waiting = "waiting"  # created with its execution; earlier stages have not finished
    running = "running"  # the stage started; `started_at` is set
    passed = "passed"  # the stage finished and its checks held; `finished_at` is set
    failed = "failed"  # the stage finished and a check failed or it raised
    skipped = "skipped"  # an earlier stage failed, or the execution does not need this stage


class ApprovalDecision(enum.StrEnum):
    """The outcome of an approval."""

    approved = "approved"  # a person or the auto-approval policy allowed the promotion
    rejected = "rejected"  # a person refused the promotion


class SlotAction(enum.StrEnum):
    """The kind of slot change that the audit log records."""

    promote = "promote"  # `promote`: a version was put into the slot
    rollback = "rollback"  # `rollback`: the slot went back to its previous version


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC timestamp on every backend.

    SQLite stores timestamps without a time zone, so values are normalised to UTC on the way
    in and marked as UTC on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"timestamp {value} has no time zone; pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _status(enum_class: type[enum.Enum]) -> Enum:
    # Stored as plain strings without a CHECK constraint, so that adding a state needs no
    # migration; the enum validates values on the way in.
    return Enum(enum_class, native_enum=False, create_constraint=False, length=32,
                values_callable=lambda members: [member.value for member in members],
                validate_strings=True)


# Named constraints let future migrations alter them, which SQLite's batch mode requires.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Run(Base):
    """One training execution, recorded as it happens."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[RunStatus] = mapped_column(_status(RunStatus), index=True)
    folder: Mapped[str | None] = mapped_column(Text)
    spec: Mapped[dict[str, Any]]
    dataset_digest: Mapped[str | None] = mapped_column(String(64))
    dataset_source: Mapped[str | None] = mapped_column(Text)
    engine: Mapped[str | None] = mapped_column(String(64))
    strategy: Mapped[str | None] = mapped_column(String(64))
    seed: Mapped[int | None]
    code_version: Mapped[str | None] = mapped_column(String(64))
    epochs_completed: Mapped[int] = mapped_column(default=0)
    final_cost: Mapped[float | None] = mapped_column(Float)
    stopped_early: Mapped[bool | None]
    training_seconds: Mapped[float | None] = mapped_column(Float)
    metrics: Mapped[dict[str, Any] | None]
    message: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None]
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    epochs: Mapped[list[RunEpoch]] = relationship(order_by="RunEpoch.epoch",
                                                  cascade="all, delete-orphan")


class RunEpoch(Base):
    """The cost of one epoch of a run; epochs are numbered from 0."""

    __tablename__ = "run_epochs"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"),
                                        primary_key=True)
    epoch: Mapped[int] = mapped_column(primary_key=True)
    cost: Mapped[float] = mapped_column(Float)


class ModelVersion(Base):
    """An immutable registered model; its weights live in the artifact named by the sha256."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    artifact_sha256: Mapped[str] = mapped_column(String(64), index=True)
    spec: Mapped[dict[str, Any]]
    class_names: Mapped[list[Any]]
    preprocessing: Mapped[dict[str, Any]]
    metrics: Mapped[dict[str, Any]]
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id"), index=True)
    dataset_digest: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]


class Slot(Base):
    """`blue` (production) or `green` (staging): which model version each one serves."""

    __tablename__ = "slots"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    previous_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    generation: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime | None]


class SlotChangeRecord(Base):
    """One row of the slots' audit log, written in the same transaction as the change."""

    __tablename__ = "slot_changes"
    __table_args__ = (Index("ix_slot_changes_slot_generation", "slot", "generation"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    slot: Mapped[str] = mapped_column(ForeignKey("slots.name"))
    action: Mapped[SlotAction] = mapped_column(_status(SlotAction))
    from_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    to_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    generation: Mapped[int]
    changed_by: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text)
    changed_at: Mapped[datetime]


class PipelineExecution(Base):
    """One pass of the delivery pipeline."""

    __tablename__ = "pipeline_executions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[ExecutionStatus] = mapped_column(_status(ExecutionStatus), index=True)
    trigger: Mapped[str] = mapped_column(String(255))
    data_path: Mapped[str | None] = mapped_column(Text)
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    stages: Mapped[list[PipelineStage]] = relationship(order_by="PipelineStage.position",
                                                       cascade="all, delete-orphan")
    approvals: Mapped[list[Approval]] = relationship(order_by="Approval.id",
                                                     cascade="all, delete-orphan")


class PipelineStage(Base):
    """One stage of a pipeline execution, with its log and its outcome."""

    __tablename__ = "pipeline_stages"

    execution_id: Mapped[str] = mapped_column(
        ForeignKey("pipeline_executions.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int]  # order of first appearance within the execution
    status: Mapped[StageStatus] = mapped_column(_status(StageStatus))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    log: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[dict[str, Any] | None]


class Approval(Base):
    """A recorded decision on whether a pipeline execution may promote its model version."""

    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    execution_id: Mapped[str] = mapped_column(
        ForeignKey("pipeline_executions.id", ondelete="CASCADE"), index=True)
    decision: Mapped[ApprovalDecision] = mapped_column(_status(ApprovalDecision))
    decided_by: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text)
    decided_at: Mapped[datetime]


class PipelineLease(Base):
    """A named lock held by one process for a while: the delivery pipeline's promotion lock
    and the claim of a worker on an execution."""

    __tablename__ = "pipeline_leases"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(255))  # host:pid:token; None when free
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[float | None] = mapped_column(Float)  # seconds since the epoch


class PipelineExecutionSettings(Base):
    """An execution's settings as JSON, frozen when it is created so a resume runs alike."""

    __tablename__ = "pipeline_execution_settings"

    execution_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    settings: Mapped[str] = mapped_column(Text)
