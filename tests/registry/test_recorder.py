"""Recording runs while they train: completed, failed, interrupted, resumed, and killed
with SIGKILL in a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from tests.registry.conftest import settings_env

from itsacat.data import load_dataset
from itsacat.registry import RegistryRecorder, RunStatus, open_registry
from itsacat.training import create_engine, train

WAIT_SECONDS = 60


class _StopAt:
    """An observer that raises `error` when epoch `epoch` finishes."""

    def __init__(self, epoch: int, error: BaseException):
        self.epoch, self.error = epoch, error

    def run_started(self, *args) -> None: ...

    def epoch_finished(self, run_id, epoch, cost, stats, elapsed) -> None:
        if epoch == self.epoch:
            raise self.error

    def run_finished(self, result) -> None: ...

    def run_stopped(self, run_id, status, message) -> None: ...


def _train(registry, dataset_path, spec, folder, extra_observers=(), resume=False, **options):
    recorder = RegistryRecorder(registry, **options)
    return train(load_dataset(dataset_path), spec, create_engine("vectorized"), folder,
                 observers=[recorder, *extra_observers], resume=resume)


def test_recorder_completed_run_records_everything(registry, small_dataset_path, small_spec,
                                                   tmp_path):
    result = _train(registry, small_dataset_path, small_spec, tmp_path / "run")

    run = registry.get_run(result.run_id)
    assert run.status == RunStatus.completed
    assert run.costs == pytest.approx(tuple(result.costs))
    assert (run.epochs_completed, run.final_cost) == (20, pytest.approx(result.costs[-1]))
    assert run.metrics == result.results["metrics"]
    assert run.folder == str((tmp_path / "run").absolute())
    assert (run.engine, run.strategy, run.seed) == ("vectorized", "sequential", 1)
    assert run.spec == small_spec.to_json()
    assert run.dataset_digest == load_dataset(small_dataset_path).digest
    assert (run.pid, run.host) == (os.getpid(), socket.gethostname())
    assert run.stopped_early is False
    assert run.started_at <= run.finished_at
    assert run.message is None


def test_recorder_writes_epochs_in_batches(registry, small_dataset_path, small_spec, tmp_path):
    commits = []
    sa.event.listen(registry.engine, "commit", lambda connection: commits.append(1))

    _train(registry, small_dataset_path, small_spec.with_overrides(epochs=250),
           tmp_path / "run", flush_epochs=100, flush_seconds=3600)

    # start, a batch at epochs 100 and 200, the last 50 epochs, then the end of the run
    assert len(commits) == 5


def test_recorder_failed_run_records_message(registry, small_dataset_path, small_spec,
                                             tmp_path):
    with pytest.raises(RuntimeError):
        _train(registry, small_dataset_path, small_spec, tmp_path / "run",
               [_StopAt(6, RuntimeError("engine lost its workers"))])

    (run,) = registry.list_runs()
    assert run.status == RunStatus.failed
    assert run.message == "engine lost its workers"
    assert run.epochs_completed == 7
    assert len(registry.get_run(run.id).costs) == 7


def test_recorder_interrupted_run_resumes_to_completed(registry, small_dataset_path,
                                                       small_spec, tmp_path):
    folder = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _train(registry, small_dataset_path, small_spec, folder, [_StopAt(4, KeyboardInterrupt())])
    (interrupted,) = registry.list_runs()
    assert interrupted.status == RunStatus.interrupted
    assert interrupted.message == (f"interrupted after 5 epochs; resume with --resume "
                                   f"{folder}")

    result = _train(registry, small_dataset_path, small_spec, folder, resume=True)

    run = registry.get_run(interrupted.id)
    assert result.run_id == interrupted.id
    assert run.status == RunStatus.completed
    assert run.costs == pytest.approx(tuple(result.costs))
    assert len(run.costs) == 20


def test_reap_dead_runs_stale_heartbeat_marks_interrupted(registry, settings, small_spec):
    registry.start_run("remote1", spec=small_spec.to_json(), folder="/runs/remote1",
                       dataset_digest="d", dataset_source="s", engine="vectorized",
                       code_version="0.1.0")
    runs = sa.table("runs", sa.column("id"), sa.column("host"), sa.column("heartbeat_at"))
    with registry.engine.begin() as connection:
        connection.execute(runs.update().where(runs.c.id == "remote1").values(
            host="other-host", heartbeat_at=datetime.now(UTC) - timedelta(hours=1)))

    with open_registry(settings) as reopened:
        run = reopened.get_run("remote1")

    assert run.status == RunStatus.interrupted
    assert run.message == (f"process {os.getpid()} on other-host sent no heartbeat for more "
                           "than 10 minutes after 0 recorded epochs; resume it with itsacat "
                           "train --resume /runs/remote1")


def test_train_killed_with_sigkill_marks_run_interrupted(registry, settings,
                                                         small_dataset_path, small_spec,
                                                         tmp_path):
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(small_spec.to_json() | {"epochs": 10**7}))
    folder = tmp_path / "run"
    trainer = subprocess.Popen(
        [sys.executable, "-m", "itsacat", "train", "--data", str(small_dataset_path),
         "--params", str(spec_file), "--out", str(folder), "--no-report"],
        env=os.environ | settings_env(settings), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    try:
        run = _wait_for_recorded_epochs(registry, trainer)
        assert run.status == RunStatus.running
        assert run.pid == trainer.pid
    finally:
        trainer.send_signal(signal.SIGKILL)
        trainer.wait(WAIT_SECONDS)
    assert trainer.returncode == -signal.SIGKILL

    (listed,) = registry.list_runs()

    assert listed.status == RunStatus.interrupted
    assert listed.message.startswith(f"process {trainer.pid} on {socket.gethostname()} ended "
                                     "without reporting (killed?) after ")
    assert listed.message.endswith(f" recorded epochs; resume it with itsacat train --resume "
                                   f"{folder}")
    with open_registry(settings) as reopened:
        run = reopened.get_run(listed.id)
        assert run.status == RunStatus.interrupted
        assert len(run.costs) == run.epochs_completed > 0
        if reopened.engine.dialect.name == "sqlite":
            with reopened.engine.connect() as connection:
                assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"


def _wait_for_recorded_epochs(registry, trainer):
    """Wait until the trainer's run is recorded with at least one batch of epochs."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if trainer.poll() is not None:
            pytest.fail(f"itsacat train exited early: {trainer.stderr.read().decode()}")
        runs = registry.list_runs()
        if runs and runs[0].epochs_completed > 0:
            return runs[0]
        time.sleep(0.1)
    pytest.fail("itsacat train recorded no epochs within a minute")


def test_recorder_heartbeat_advances_between_epochs(registry, small_dataset_path, small_spec,
                                                    tmp_path):
    recorder = RegistryRecorder(registry, heartbeat_seconds=0.05)
    recorder.run_started("beating", small_spec, load_dataset(small_dataset_path), "vectorized",
                         tmp_path / "run", resumed=False)
    started = registry.get_run("beating").heartbeat_at
    deadline = time.monotonic() + WAIT_SECONDS
    while registry.get_run("beating").heartbeat_at == started:
        assert time.monotonic() < deadline, "no heartbeat recorded within a minute"
        time.sleep(0.05)

    recorder.run_stopped("beating", "interrupted", "stopped by the test")

    run = registry.get_run("beating")
    assert run.status == RunStatus.interrupted
    assert run.message == "stopped by the test"
    assert run.heartbeat_at > started


def test_beat_finished_run_leaves_heartbeat(registry, small_spec):
    registry.start_run("done1", spec=small_spec.to_json(), folder="/r", dataset_digest="d",
                       dataset_source="s", engine="vectorized", code_version="0.1.0")
    finished = registry.stop_run("done1", RunStatus.failed, "diverged")

    registry.beat("done1")

    assert registry.get_run("done1").heartbeat_at == finished.heartbeat_at
