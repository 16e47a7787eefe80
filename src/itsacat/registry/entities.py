"""Records that the registry returns: plain, immutable and detached from the database."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from itsacat.registry.schema import (
    ApprovalDecision,
    ExecutionStatus,
    RunStatus,
    SlotAction,
    StageStatus,
)


class Record:
    """Base of every record, with a JSON-ready dict for `--json` output and HTTP responses."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Run(Record):
    """One training execution as recorded in the registry."""

    id: str
    status: RunStatus
    folder: str | None  # the run folder: params.h5, parameters.json, results.json, checkpoint
    spec: dict[str, Any]  # the parameters.json document the run trained with
    engine: str | None
    strategy: str | None
    seed: int | None
    dataset_digest: str | None
    dataset_source: str | None
    code_version: str | None
    epochs_completed: int
    final_cost: float | None
    stopped_early: bool | None
    training_seconds: float | None  # time spent in epochs, summed over every resumption
    metrics: dict[str, Any] | None  # {"train": {...}, "test": {...}} once completed
    message: str | None  # why the run failed or was interrupted
    host: str | None
    pid: int | None
    started_at: datetime
    heartbeat_at: datetime | None  # the last time the training process wrote to the registry
    finished_at: datetime | None
    # Per-epoch cost, epoch 0 first; `get_run` fills it, `list_runs` leaves it None.
    costs: tuple[float, ...] | None = None

    @property
    def test_accuracy(self) -> float | None:
        return self.metrics["test"]["accuracy"] if self.metrics else None


@dataclass(frozen=True)
class ModelVersion(Record):
    """An immutable registered model: where its weights are and where it came from."""

    id: int
    artifact_sha256: str  # the model bundle in the artifact store
    spec: dict[str, Any]
    class_names: tuple[str, str]
    preprocessing: dict[str, Any]
    metrics: dict[str, Any]  # {"train": {...}, "test": {...}} for a run; may be empty
    run_id: str | None
    dataset_digest: str | None
    created_at: datetime
    source: str  # "run" or "import"

    @property
    def test_accuracy(self) -> float | None:
        test = self.metrics.get("test") if self.metrics else None
        return test.get("accuracy") if isinstance(test, dict) else None


@dataclass(frozen=True)
class SlotState(Record):
    """The model version a slot serves; `generation` grows by one on every change."""

    name: str
    version_id: int | None
    previous_version_id: int | None  # what `rollback` returns to
    generation: int
    updated_at: datetime | None


@dataclass(frozen=True)
class SlotChange(Record):
    """One entry of the audit log of slot changes: who moved which slot, when and why."""

    id: int
    slot: str
    action: SlotAction
    from_version_id: int | None
    to_version_id: int | None
    generation: int  # the slot's generation after this change
    by: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class Stage(Record):
    """One stage of a pipeline execution."""

    name: str
    position: int
    status: StageStatus
    started_at: datetime | None
    finished_at: datetime | None
    log: str
    outcome: dict[str, Any] | None


@dataclass(frozen=True)
class Approval(Record):
    """A recorded decision on whether an execution may promote its model version."""

    id: int
    execution_id: str
    decision: ApprovalDecision
    by: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class Execution(Record):
    """One pass of the delivery pipeline, with its stages in order and its approvals."""

    id: str
    status: ExecutionStatus
    trigger: str
    data_path: str | None
    model_version_id: int | None
    created_at: datetime
    updated_at: datetime
    stages: tuple[Stage, ...] = ()
    approvals: tuple[Approval, ...] = ()

    def stage(self, name: str) -> Stage | None:
        return next((stage for stage in self.stages if stage.name == name), None)
