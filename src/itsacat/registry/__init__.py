"""The registry: runs, model versions, the blue and green slots, pipeline executions and
approvals, with an audit log of every slot change, in SQLite (default) or PostgreSQL, and
model artifacts in a content-addressed store.

    registry = open_registry(Settings.from_env())
    version = registry.register_model(model, run_id=run_id, metrics=metrics)
    registry.promote(version.id, "green", expected=registry.slot_state("green").version_id,
                     by="alice", reason="gates passed")
"""

from __future__ import annotations

from itsacat.registry.artifacts import ArtifactStore
from itsacat.registry.database import create_registry_engine
from itsacat.registry.entities import (
    Approval,
    Execution,
    ModelVersion,
    Run,
    SlotChange,
    SlotState,
    Stage,
)
from itsacat.registry.errors import ArtifactCorrupted, RegistryError, SlotConflict
from itsacat.registry.recorder import RegistryRecorder
from itsacat.registry.schema import (
    SLOT_NAMES,
    ApprovalDecision,
    ExecutionStatus,
    RunStatus,
    SlotAction,
    StageStatus,
)
from itsacat.registry.store import Registry, check_slot
from itsacat.settings import Settings


def open_registry(settings: Settings) -> Registry:
    """Open the registry that `settings` point at, creating or migrating its database.

    Creates `$ITSACAT_HOME/artifacts`, and marks running runs whose process is gone as
    interrupted. Safe to call from several processes at once.
    """
    engine = create_registry_engine(settings.registry_url)
    registry = Registry(engine, ArtifactStore(settings.home / "artifacts"))
    registry.migrate()
    registry.reap_dead_runs()
    return registry


__all__ = [
    "SLOT_NAMES", "Approval", "ApprovalDecision", "ArtifactCorrupted", "ArtifactStore",
    "Execution", "ExecutionStatus", "ModelVersion", "Registry", "RegistryError",
    "RegistryRecorder", "Run", "RunStatus", "SlotAction", "SlotChange", "SlotConflict",
    "SlotState", "Stage", "StageStatus", "check_slot", "open_registry",
]
