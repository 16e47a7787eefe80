"""A worker killed with SIGKILL between stages, and another that resumes the execution from
the first unfinished stage."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

from itsacat.cli import main
from itsacat.pipeline import ExecutionSettings, Worker, create_execution
from itsacat.pipeline.services import served_version
from itsacat.registry import ExecutionStatus, StageStatus
from tests.conftest import SMALL_SPEC, write_h5_dataset
from tests.pipeline.conftest import cli_command

# A real worker process that kills itself with SIGKILL as soon as the named stage finishes,
# which is a crash at an exact point between two stages.
KILLING_WORKER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from itsacat.pipeline import Executor
    from itsacat.registry import open_registry
    from itsacat.settings import Settings

    home, execution_id, last_stage = sys.argv[1:4]

    class KillAfter:
        def stage_finished(self, execution_id, stage, status, detail):
            if stage == last_stage:
                os.kill(os.getpid(), signal.SIGKILL)

    registry = open_registry(Settings.from_env(home))
    Executor(registry, Path(home), observers=[KillAfter()]).run(execution_id)
""")


def test_resume_killed_worker_finishes_from_first_unfinished_stage(live, tmp_path, capsys):
    home, registry, config = live
    data = write_h5_dataset(tmp_path / "cats.h5", m_train=20, m_test=6)
    params = tmp_path / "parameters.json"
    params.write_text(json.dumps(SMALL_SPEC))
    execution = create_execution(registry, ExecutionSettings(
        kind="full", config=config.replace(approval="auto", gates__max_regression=1.0),
        data_path=str(data), params_path=str(params), epochs=5), "test")
    runs_before = {run.id for run in registry.list_runs()}

    killed = subprocess.run([sys.executable, "-c", KILLING_WORKER, str(home), execution.id,
                             "register"], capture_output=True, text=True, timeout=120)

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    crashed = registry.get_execution(execution.id)
    assert crashed.status == ExecutionStatus.running
    assert [stage.status for stage in crashed.stages[:4]] == [
        StageStatus.passed, StageStatus.passed, StageStatus.passed, StageStatus.waiting]
    trained = crashed.stage("train")
    capsys.readouterr()
    assert main(["--home", str(home), "pipeline", "status"]) == 0
    listed = next(line for line in capsys.readouterr().out.splitlines()
                  if line.startswith(execution.id))
    assert "build_release  no worker runs it; itsacat up or itsacat pipeline worker" in listed

    resumed = subprocess.run(cli_command(home, "pipeline", "worker", "--once", "--no-inbox"),
                             capture_output=True, text=True, timeout=120)

    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == "ran 1 execution(s)\n"
    finished = registry.get_execution(execution.id)
    assert finished.status == ExecutionStatus.succeeded
    assert finished.stage("train") == trained  # not run again: same timestamps and outcome
    new_runs = {run.id for run in registry.list_runs()} - runs_before
    assert new_runs == {trained.outcome["run_id"]}
    assert registry.slot_state("blue").version_id == finished.model_version_id
    assert served_version(config.services.url("blue")) == finished.model_version_id


def test_resume_stage_running_at_crash_runs_again(live, tmp_path):
    home, registry, config = live
    data = write_h5_dataset(tmp_path / "cats.h5", m_train=20, m_test=6)
    params = tmp_path / "parameters.json"
    params.write_text(json.dumps(SMALL_SPEC | {"seed": 5}))
    execution = create_execution(registry, ExecutionSettings(
        kind="full", config=config.replace(approval="auto", gates__max_regression=1.0),
        data_path=str(data), params_path=str(params), epochs=5), "test")
    # A crash inside the train stage leaves it running with a partial run folder.
    registry.upsert_stage(execution.id, "train", StageStatus.running)
    registry.update_execution(execution.id, status=ExecutionStatus.running)
    partial = home / "executions" / execution.id / "run"
    partial.mkdir(parents=True)
    (partial / "results.json").write_text("{")

    ran = Worker(registry, home).run_once()

    assert ran == 1
    finished = registry.get_execution(execution.id)
    assert finished.status == ExecutionStatus.succeeded
    assert finished.stage("train").log.startswith(
        f"removing the partial run folder {partial} of an interrupted attempt")
