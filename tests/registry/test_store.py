"""The registry store on SQLite and PostgreSQL: model versions, slots, runs, pipeline state."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from tests.registry.conftest import make_model

from itsacat.registry import (
    ApprovalDecision,
    ExecutionStatus,
    RegistryError,
    RunStatus,
    SlotAction,
    SlotConflict,
    StageStatus,
    open_registry,
)
from itsacat.registry.schema import Base


def test_open_registry_fresh_database_matches_orm_schema(registry):
    with registry.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_open_registry_twice_keeps_records(settings, small_spec):
    with open_registry(settings) as first:
        version = first.register_model(make_model(small_spec), source="import")
    with open_registry(settings) as second:
        assert second.get_version(version.id) == version


def test_open_registry_creates_artifacts_folder(registry, settings):
    assert (settings.home / "artifacts").is_dir()


def test_register_model_ids_count_from_one(registry, small_spec):
    first = registry.register_model(make_model(small_spec, seed=1), source="import")
    second = registry.register_model(make_model(small_spec, seed=2), source="import")

    assert (first.id, second.id) == (1, 2)
    assert [version.id for version in registry.list_versions()] == [2, 1]


def test_register_model_records_lineage_and_spec(registry, small_spec):
    model = make_model(small_spec)
    run = registry.start_run("run-a", spec=small_spec.to_json(), folder="/runs/a",
                             dataset_digest="d" * 64, dataset_source="data.h5",
                             engine="vectorized", code_version="0.1.0")

    version = registry.register_model(model, run_id=run.id, metrics={"test": {"accuracy": 0.8}})

    stored = registry.get_version(version.id)
    assert stored.run_id == "run-a"
    assert stored.dataset_digest == "d" * 64
    assert stored.spec == model.spec.to_json()
    assert stored.class_names == ("non-cat", "cat")
    assert stored.metrics == {"test": {"accuracy": 0.8}}
    assert stored.source == "run"
    assert stored.created_at.tzinfo is not None
    assert len(stored.artifact_sha256) == 64


def test_register_model_same_model_twice_returns_first_version(registry, small_spec):
    first = registry.register_model(make_model(small_spec), source="import")
    again = registry.register_model(make_model(small_spec), source="import")

    assert again.id == first.id
    assert len(registry.list_versions()) == 1


def test_register_model_unknown_run_raises_not_found(registry, small_spec):
    with pytest.raises(RegistryError) as raised:
        registry.register_model(make_model(small_spec), run_id="nosuchrun")

    assert raised.value.code == "run_not_found"
    assert raised.value.http_status == 404
    assert str(raised.value) == ("run 'nosuchrun' not found in the registry; see itsacat "
                                 "runs list")
    assert registry.list_versions() == []


def test_get_version_unknown_raises_not_found(registry):
    with pytest.raises(RegistryError) as raised:
        registry.get_version(42)

    assert raised.value.code == "version_not_found"
    assert raised.value.http_status == 404
    assert str(raised.value) == ("model version 42 not found in the registry; see itsacat "
                                 "models list")


def test_load_model_gives_same_weights(registry, small_spec):
    model = make_model(small_spec, seed=7)
    version = registry.register_model(model, source="import")

    loaded = registry.load_model(version.id)

    assert loaded.params.max_abs_difference(model.params) == 0.0
    assert loaded.spec == model.spec
    assert loaded.class_names == model.class_names


def test_slot_empty_at_start(registry):
    for name in ("blue", "green"):
        state = registry.slot_state(name)
        assert registry.slot(name) is None
        assert (state.version_id, state.previous_version_id, state.generation) == (None, None, 0)


def test_promote_expected_holds_moves_slot_and_audits(registry, small_spec):
    v1 = registry.register_model(make_model(small_spec, seed=1), source="import")
    v2 = registry.register_model(make_model(small_spec, seed=2), source="import")

    registry.promote(v1.id, "blue", expected=None, by="alice", reason="first release")
    change = registry.promote(v2.id, "blue", expected=v1.id, by="bob", reason="gates passed")

    assert (change.from_version_id, change.to_version_id) == (v1.id, v2.id)
    assert change.generation == 2
    state = registry.slot_state("blue")
    assert (state.version_id, state.previous_version_id, state.generation) == (v2.id, v1.id, 2)
    assert registry.slot("blue") == v2
    assert registry.slot_state("green").generation == 0
    history = registry.slot_history("blue")
    assert [(c.action, c.from_version_id, c.to_version_id, c.by, c.reason) for c in history] == [
        (SlotAction.promote, v1.id, v2.id, "bob", "gates passed"),
        (SlotAction.promote, None, v1.id, "alice", "first release")]


def test_promote_expected_stale_raises_conflict_naming_current(registry, small_spec):
    v1 = registry.register_model(make_model(small_spec, seed=1), source="import")
    v2 = registry.register_model(make_model(small_spec, seed=2), source="import")
    registry.promote(v1.id, "blue", expected=None, by="alice", reason="")

    with pytest.raises(SlotConflict) as raised:
        registry.promote(v2.id, "blue", expected=None, by="bob", reason="")

    assert raised.value.code == "slot_conflict"
    assert raised.value.http_status == 409
    assert raised.value.current == v1.id
    assert str(raised.value) == (
        "slot blue holds model version 1, but the caller expected an empty slot; another "
        "change came first, so read the slot again and retry with --expect 1")
    assert registry.slot_state("blue").version_id == v1.id
    assert len(registry.slot_history()) == 1


def test_promote_unknown_version_leaves_slot(registry, small_spec):
    v1 = registry.register_model(make_model(small_spec), source="import")
    registry.promote(v1.id, "blue", expected=None, by="alice", reason="")

    with pytest.raises(RegistryError) as raised:
        registry.promote(99, "blue", expected=v1.id, by="bob", reason="")

    assert raised.value.code == "version_not_found"
    assert str(raised.value) == ("model version 99 not found in the registry; see itsacat "
                                 "models list")
    assert registry.slot_state("blue").version_id == v1.id


def test_promote_version_already_in_slot_raises(registry, small_spec):
    v1 = registry.register_model(make_model(small_spec), source="import")
    registry.promote(v1.id, "blue", expected=None, by="alice", reason="")

    with pytest.raises(RegistryError) as raised:
        registry.promote(v1.id, "blue", expected=v1.id, by="bob", reason="")

    assert raised.value.code == "already_in_slot"
    assert raised.value.http_status == 409
    assert str(raised.value) == "model version 1 is already in slot blue; nothing to promote"
    assert registry.slot_state("blue").generation == 1


@pytest.mark.parametrize("name", ["red", "Blue", ""])
def test_slot_bad_name_raises(registry, name):
    for call in (lambda: registry.slot_state(name),
                 lambda: registry.promote(1, name, expected=None, by="x", reason=""),
                 lambda: registry.rollback(name, by="x", reason="")):
        with pytest.raises(RegistryError) as raised:
            call()
        assert raised.value.code == "invalid_slot"
        assert str(raised.value) == (f"slot {name!r} does not exist; choose one of blue, "
                                     "green")


def test_rollback_returns_to_previous_and_back(registry, small_spec):
    v1 = registry.register_model(make_model(small_spec, seed=1), source="import")
    v2 = registry.register_model(make_model(small_spec, seed=2), source="import")
    registry.promote(v1.id, "blue", expected=None, by="alice", reason="")
    registry.promote(v2.id, "blue", expected=v1.id, by="alice", reason="")

    change = registry.rollback("blue", by="carol", reason="error rate up")

    assert (change.action, change.from_version_id, change.to_version_id) == (
        SlotAction.rollback, v2.id, v1.id)
    state = registry.slot_state("blue")
    assert (state.version_id, state.previous_version_id, state.generation) == (v1.id, v2.id, 3)
    registry.rollback("blue", by="carol", reason="it was fine")
    assert registry.slot_state("blue").version_id == v2.id


def test_rollback_without_previous_raises(registry, small_spec):
    v1 = registry.register_model(make_model(small_spec), source="import")
    registry.promote(v1.id, "green", expected=None, by="alice", reason="")

    with pytest.raises(RegistryError) as raised:
        registry.rollback("green", by="bob", reason="")

    assert raised.value.code == "nothing_to_roll_back"
    assert str(raised.value) == ("slot green has no previous model version to roll back to; "
                                 "promote a version instead")
    assert registry.slot_state("green").version_id == v1.id


def test_get_run_unknown_raises_not_found(registry):
    with pytest.raises(RegistryError) as raised:
        registry.get_run("0123abcd")

    assert raised.value.code == "run_not_found"
    assert raised.value.http_status == 404
    assert str(raised.value) == "run '0123abcd' not found in the registry; see itsacat runs list"


def test_get_run_prefix_finds_single_run(registry, small_spec):
    registry.start_run("abc123", spec=small_spec.to_json(), folder="/r", dataset_digest="d",
                       dataset_source="s", engine="vectorized", code_version="0.1.0")

    assert registry.get_run("abc").id == "abc123"


def test_record_epochs_resumed_run_replaces_later_epochs(registry, small_spec):
    registry.start_run("r1", spec=small_spec.to_json(), folder="/r", dataset_digest="d",
                       dataset_source="s", engine="vectorized", code_version="0.1.0")
    registry.record_epochs("r1", 0, [0.9, 0.8, 0.7, 0.6], training_seconds=1.0)

    registry.record_epochs("r1", 2, [0.65, 0.55, 0.45], training_seconds=2.0)

    run = registry.get_run("r1")
    assert run.costs == (0.9, 0.8, 0.65, 0.55, 0.45)
    assert (run.epochs_completed, run.final_cost, run.training_seconds) == (5, 0.45, 2.0)
    assert run.status == RunStatus.running


def test_execution_stages_and_approvals_round_trip(registry, small_spec):
    version = registry.register_model(make_model(small_spec), source="import")
    execution = registry.create_execution("inbox", data_path="/inbox/new.h5",
                                          model_version_id=version.id,
                                          stage_names=("build", "deploy_green"))

    first_start = registry.upsert_stage(execution.id, "build", StageStatus.running).started_at
    still_running = registry.upsert_stage(execution.id, "build", StageStatus.running,
                                          log="building\n")
    registry.upsert_stage(execution.id, "build", StageStatus.passed, log="built\n",
                          outcome={"artifact": version.artifact_sha256})
    registry.upsert_stage(execution.id, "verify", StageStatus.failed, log="gate failed")
    registry.upsert_stage(execution.id, "approve", StageStatus.running)
    registry.update_execution(execution.id, status=ExecutionStatus.awaiting_approval)
    registry.record_approval(execution.id, ApprovalDecision.rejected, by="dave",
                             reason="accuracy too low")

    stored = registry.get_execution(execution.id)
    assert stored.status == ExecutionStatus.awaiting_approval
    assert (stored.trigger, stored.data_path, stored.model_version_id) == (
        "inbox", "/inbox/new.h5", version.id)
    assert [(s.name, s.position, s.status) for s in stored.stages] == [
        ("build", 0, StageStatus.passed), ("deploy_green", 1, StageStatus.waiting),
        ("verify", 2, StageStatus.failed), ("approve", 3, StageStatus.running)]
    assert stored.stage("approve").started_at is not None
    build = stored.stage("build")
    assert still_running.started_at == first_start
    assert still_running.log == "building\n"
    assert build.started_at == first_start
    assert build.log == "built\n"
    assert build.outcome == {"artifact": version.artifact_sha256}
    assert build.started_at <= build.finished_at
    assert stored.stage("deploy_green").started_at is None
    assert [(a.decision, a.by, a.reason) for a in stored.approvals] == [
        (ApprovalDecision.rejected, "dave", "accuracy too low")]
    assert [e.id for e in registry.list_executions()] == [execution.id]


def test_execution_unknown_raises_not_found(registry):
    for call in (lambda: registry.get_execution("nope"),
                 lambda: registry.upsert_stage("nope", "build", StageStatus.running),
                 lambda: registry.record_approval("nope", ApprovalDecision.approved,
                                                  by="x", reason="")):
        with pytest.raises(RegistryError) as raised:
            call()
        assert raised.value.code == "execution_not_found"
        assert raised.value.http_status == 404
        assert str(raised.value) == ("pipeline execution 'nope' not found in the registry; "
                                     "see itsacat pipeline status")


def test_rollback_with_stale_expectation_conflicts(registry, small_spec):
    v1 = registry.register_model(make_model(small_spec, seed=1), source="import")
    v2 = registry.register_model(make_model(small_spec, seed=2), source="import")
    v3 = registry.register_model(make_model(small_spec, seed=3), source="import")
    registry.promote(v1.id, "blue", expected=None, by="alice", reason="")
    registry.promote(v2.id, "blue", expected=v1.id, by="alice", reason="")
    # Someone promotes v3 after the rollback was decided against v2.
    registry.promote(v3.id, "blue", expected=v2.id, by="bob", reason="")

    with pytest.raises(SlotConflict) as raised:
        registry.rollback("blue", by="carol", reason="", expected=v2.id)

    assert str(raised.value) == (f"slot blue holds model version {v3.id}, but the caller "
                                 f"expected model version {v2.id}; another change came first, "
                                 f"so read the slot again and retry with --expect {v3.id}")
    assert registry.slot_state("blue").version_id == v3.id
    change = registry.rollback("blue", by="carol", reason="", expected=v3.id)
    assert (change.from_version_id, change.to_version_id) == (v3.id, v2.id)
