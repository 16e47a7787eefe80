"""End to end: real blue and green services, a real registry, executions from trigger to
blue, and the ways they stop before blue."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from itsacat.cli import main
from itsacat.pipeline import ExecutionSettings, Executor, InboxWatcher, Worker, create_execution
from itsacat.pipeline import state as leases
from itsacat.pipeline.services import served_version, wait_for_version
from itsacat.registry import ApprovalDecision, ExecutionStatus, StageStatus
from tests.conftest import SMALL_SPEC, write_h5_dataset
from tests.pipeline.conftest import Receiver, register_model


def deliver(home, registry, config, version_id: int):
    settings = ExecutionSettings(kind="deliver", config=config, model_version_id=version_id)
    execution = create_execution(registry, settings, "test")
    return Executor(registry, home).run(execution.id)


def statuses(execution) -> dict[str, StageStatus]:
    return {stage.name: stage.status for stage in execution.stages}


def put_in_blue(home, registry, config, accuracy: float, seed: int):
    """Promote a new model version straight to blue, as an earlier release would have."""
    version = register_model(registry, accuracy, seed=seed)
    registry.promote(version.id, "blue", expected=registry.slot_state("blue").version_id,
                     by="test", reason="an earlier release")
    wait_for_version(config.services.url("blue"), version.id, 20.0)
    return version


def test_delivery_inbox_upload_reaches_blue(live, tmp_path):
    home, registry, config = live
    config = config.replace(notify__webhooks=())
    with Receiver() as receiver:
        config = config.replace(notify__webhooks=(receiver.url,))
        watcher = InboxWatcher(registry, home, config, epochs=5)
        worker = Worker(registry, home)
        write_h5_dataset(tmp_path / "upload.h5.partial", m_train=20, m_test=6)
        (watcher.inbox / "parameters.json").write_text(json.dumps(SMALL_SPEC))
        (tmp_path / "upload.h5.partial").rename(watcher.inbox / "cats.h5")

        started = []
        for _ in range(20):
            started += watcher.poll()
            if started:
                break
        worker.run_once()

    execution = registry.get_execution(started[0].id)
    assert execution.status == ExecutionStatus.succeeded
    assert set(statuses(execution).values()) == {StageStatus.passed, StageStatus.skipped}
    assert statuses(execution)["build_image"] == StageStatus.skipped
    version_id = execution.model_version_id
    assert registry.slot_state("blue").version_id == version_id
    assert served_version(config.services.url("blue")) == version_id
    answer = httpx.post(config.services.url("blue") + "/predict",
                        files={"file": ("gray.png", _gray_png())}).json()
    assert answer["model_version"] == version_id
    assert answer["slot"] == "blue"
    assert receiver.events() == ["execution_succeeded"]
    assert receiver.bodies[0]["model_version"] == version_id
    release = execution.stage("build_release").outcome
    assert (home / "releases" / f"{release['release']}.json").is_file()


def test_delivery_worse_candidate_stops_at_gate(live):
    home, registry, config = live
    blue = put_in_blue(home, registry, config, accuracy=0.9, seed=11)
    worse = register_model(registry, 0.5, seed=12)

    finished = deliver(home, registry, config.replace(gates__max_regression=0.02), worse.id)

    assert finished.status == ExecutionStatus.failed
    assert statuses(finished) == {
        "train": "skipped", "evaluate": "skipped", "register": "skipped",
        "build_release": "passed", "build_image": "skipped", "deploy_green": "passed",
        "verify_green": "passed", "gate": "failed", "approve": "skipped",
        "promote_blue": "skipped", "notify": "passed"}
    assert finished.stage("gate").outcome["reason"] == (
        f"1 blocking gate(s) failed: no_regression: test accuracy 0.5000 against blue's "
        f"(model version {blue.id}) 0.9000 minus tolerance 0.0200")
    assert registry.slot_state("blue").version_id == blue.id
    assert served_version(config.services.url("blue")) == blue.id


def test_delivery_blocking_smoke_label_stops_at_gate(live, tmp_path):
    home, registry, config = live
    from PIL import Image
    Image.new("RGB", (64, 64), (200, 200, 200)).save(tmp_path / "gray.png")
    (tmp_path / "labels.csv").write_text("file,label,note\ngray.png,impossible,a label no "
                                         "model gives\n")
    blue_before = registry.slot_state("blue").version_id
    candidate = register_model(registry, 0.95, seed=13)

    finished = deliver(home, registry, config.replace(
        gates__smoke_images=str(tmp_path), gates__smoke_labels="blocking"), candidate.id)

    assert finished.status == ExecutionStatus.failed
    gates = {gate["gate"]: gate for gate in finished.stage("gate").outcome["gates"]}
    assert gates["smoke_label:gray.png"]["passed"] is False
    assert gates["smoke_label:gray.png"]["blocking"] is True
    assert registry.slot_state("blue").version_id == blue_before


def test_delivery_advisory_smoke_label_is_recorded_and_approved(live, tmp_path):
    home, registry, config = live
    from PIL import Image
    Image.new("RGB", (64, 64), (200, 200, 200)).save(tmp_path / "gray.png")
    (tmp_path / "labels.csv").write_text("file,label\ngray.png,impossible\n")
    candidate = register_model(registry, 0.96, seed=14)

    finished = deliver(home, registry, config.replace(
        gates__smoke_images=str(tmp_path), gates__smoke_labels="advisory"), candidate.id)

    assert finished.status == ExecutionStatus.succeeded
    assert finished.approvals[0].by == "policy:auto"
    assert finished.approvals[0].reason == ("every blocking gate passed; advisory gates "
                                            "failed: smoke_label:gray.png")
    assert registry.slot_state("blue").version_id == candidate.id


def test_delivery_rejection_leaves_blue_unchanged(live, capsys):
    home, registry, config = live
    blue = put_in_blue(home, registry, config, accuracy=0.97, seed=15)
    candidate = register_model(registry, 0.98, seed=16)

    with Receiver() as receiver:
        config = config.replace(approval="manual", notify__webhooks=(receiver.url,))
        waiting = deliver(home, registry, config, candidate.id)
        assert waiting.status == ExecutionStatus.awaiting_approval
        assert waiting.stage("approve").status == StageStatus.running

        code = main(["--home", str(home), "pipeline", "reject", waiting.id, "--by", "bob",
                     "--reason", "not before the release freeze ends"])

    assert code == 0
    assert receiver.events() == ["awaiting_approval", "execution_failed"]
    assert receiver.bodies[1]["reason"] == "rejected by bob: not before the release freeze ends"
    finished = registry.get_execution(waiting.id)
    assert finished.status == ExecutionStatus.failed
    assert finished.stage("approve").status == StageStatus.failed
    assert finished.stage("approve").started_at == waiting.stage("approve").started_at
    assert finished.stage("approve").outcome["reason"] == (
        "rejected by bob: not before the release freeze ends")
    assert finished.stage("promote_blue").status == StageStatus.skipped
    assert [(a.decision, a.by) for a in finished.approvals] == [
        (ApprovalDecision.rejected, "bob")]
    assert registry.slot_state("blue").version_id == blue.id
    assert served_version(config.services.url("blue")) == blue.id


def test_delivery_manual_approval_promotes_then_rollback_restores(live, capsys):
    home, registry, config = live
    blue = put_in_blue(home, registry, config, accuracy=0.97, seed=17)
    candidate = register_model(registry, 0.98, seed=18)
    waiting = deliver(home, registry, config.replace(approval="manual"), candidate.id)

    approved = main(["--home", str(home), "pipeline", "approve", waiting.id, "--by", "alice",
                     "--reason", "report checked"])

    assert approved == 0
    assert registry.get_execution(waiting.id).status == ExecutionStatus.succeeded
    assert registry.slot_state("blue").version_id == candidate.id
    assert served_version(config.services.url("blue")) == candidate.id
    change = registry.slot_history("blue", limit=1)[0]
    assert (change.by, change.reason) == ("alice", f"execution {waiting.id}: report checked")

    rolled = main(["--home", str(home), "rollback", "--by", "carol", "--reason", "regression"])

    assert rolled == 0
    assert registry.slot_state("blue").version_id == blue.id
    assert wait_for_version(config.services.url("blue"), blue.id, 20.0) >= 0
    assert capsys.readouterr().out.endswith(
        f"blue: model version {candidate.id} -> model version {blue.id} (generation "
        f"{registry.slot_state('blue').generation})\n")


def test_delivery_blue_changed_after_gate_fails_promotion(live):
    home, registry, config = live
    blue = put_in_blue(home, registry, config, accuracy=0.97, seed=19)
    candidate = register_model(registry, 0.98, seed=20)
    waiting = deliver(home, registry, config.replace(approval="manual"), candidate.id)
    intruder = register_model(registry, 0.99, seed=21)
    registry.promote(intruder.id, "blue", expected=blue.id, by="someone", reason="hotfix")
    registry.record_approval(waiting.id, ApprovalDecision.approved, by="alice", reason="ok")

    finished = Executor(registry, home).run(waiting.id)

    assert finished.status == ExecutionStatus.failed
    reason = finished.stage("promote_blue").outcome["reason"]
    assert reason == (f"blue changed after the gate compared the candidate with it: blue "
                      f"holds model version {intruder.id}, the gate compared with model "
                      f"version {blue.id}; start a new execution to judge the candidate "
                      "against the current blue")
    assert registry.slot_state("blue").version_id == intruder.id


def test_delivery_promotion_lease_is_exclusive_until_holder_dies(registry):
    first, second = leases.Holder.this_process(), leases.Holder.this_process()
    leases.acquire(registry, leases.PROMOTION_LEASE, first)

    with pytest.raises(leases.LeaseBusy) as raised:
        leases.acquire(registry, leases.PROMOTION_LEASE, second)

    assert raised.value.holder == first.name
    leases.release(registry, leases.PROMOTION_LEASE, first)
    leases.acquire(registry, leases.PROMOTION_LEASE, second)
    dead = leases.Holder(second.host, 2**22 + 12345, "gone")  # no such process
    leases.release(registry, leases.PROMOTION_LEASE, second)
    leases.acquire(registry, leases.PROMOTION_LEASE, dead)
    leases.acquire(registry, leases.PROMOTION_LEASE, first)
    assert leases.lease_holder(registry, leases.PROMOTION_LEASE) == first.name


def test_delivery_concurrent_promotions_never_overlap(live):
    home, registry, config = live
    put_in_blue(home, registry, config, accuracy=0.5, seed=22)
    holder = leases.Holder.this_process()
    leases.acquire(registry, leases.PROMOTION_LEASE, holder)
    candidate = register_model(registry, 0.99, seed=23)
    execution = create_execution(registry, ExecutionSettings(
        kind="deliver", config=config.replace(approval="auto"), model_version_id=candidate.id),
        "test")
    results = {}
    runner = threading.Thread(target=lambda: results.update(
        done=Executor(registry, home).run(execution.id)))
    runner.start()

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and registry.get_execution(
            execution.id).stage("promote_blue").status != StageStatus.running:
        time.sleep(0.05)
    time.sleep(0.5)  # the stage now waits for the lease; blue must not move meanwhile
    waiting_blue = registry.slot_state("blue").version_id
    leases.release(registry, leases.PROMOTION_LEASE, holder)
    runner.join(60)

    assert waiting_blue != candidate.id
    assert results["done"].status == ExecutionStatus.succeeded
    assert "waiting for the promotion held by " + holder.name in (
        results["done"].stage("promote_blue").log)
    assert registry.slot_state("blue").version_id == candidate.id


def _gray_png() -> bytes:
    import io

    from PIL import Image
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (90, 90, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_delivery_real_smoke_images_are_each_checked(live, shared_data):
    home, registry, config = live
    images = shared_data / "images"
    candidate = register_model(registry, 0.995, seed=30)

    finished = deliver(home, registry, config.replace(gates__smoke_images=str(images),
                                                      gates__smoke_labels="advisory"),
                       candidate.id)

    assert finished.status == ExecutionStatus.succeeded
    checks = finished.stage("verify_green").outcome["checks"]
    assert [(check["name"], check["expected"]) for check in checks[2:]] == [
        ("grumpy_cat.jpeg", "cat"), ("eiffel_tower.jpeg", "non-cat"),
        ("gargoyle_paris.jpeg", "non-cat")]
    assert all(check["model_version"] == candidate.id for check in checks[1:])
    gates = [gate["gate"] for gate in finished.stage("gate").outcome["gates"]]
    assert gates == ["min_test_accuracy", "no_regression", "smoke_label:grumpy_cat.jpeg",
                     "smoke_label:eiffel_tower.jpeg", "smoke_label:gargoyle_paris.jpeg",
                     "latency"]
