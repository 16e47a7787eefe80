"""The commands as a user runs them: itsacat demo, itsacat up, itsacat pipeline status."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from itsacat.cli import main
from itsacat.pipeline.services import served_version
from itsacat.registry import open_registry
from itsacat.settings import Settings
from tests.conftest import SMALL_SPEC, write_h5_dataset
from tests.pipeline.conftest import cli_command, free_port


@pytest.fixture
def small_inputs(tmp_path: Path) -> tuple[Path, Path]:
    data = write_h5_dataset(tmp_path / "cats.h5", m_train=20, m_test=6)
    params = tmp_path / "parameters.json"
    params.write_text(json.dumps(SMALL_SPEC))
    return data, params


def test_demo_runs_one_execution_to_blue(tmp_path, small_inputs):
    data, params = small_inputs
    home = tmp_path / "home"
    blue, green = free_port(), free_port()

    result = subprocess.run(
        cli_command(home, "demo", "--data", str(data), "--params", str(params), "--epochs",
                    "5", "--blue-port", str(blue), "--green-port", str(green),
                    "--min-accuracy", "0"),
        capture_output=True, text=True, timeout=180)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"blue  (production): http://127.0.0.1:{blue}"
    assert lines[1] == f"green (staging):    http://127.0.0.1:{green}"
    with open_registry(Settings.from_env(home)) as registry:
        execution = registry.list_executions(limit=1)[0]
        assert registry.slot_state("blue").version_id == execution.model_version_id
    version = execution.model_version_id
    assert f"execution {execution.id}: succeeded; blue serves model version {version}" in lines
    assert any(line.startswith(f"model version {version}: train accuracy ") for line in lines)
    report = next(line.removeprefix("report: ") for line in lines if line.startswith("report:"))
    assert Path(report).is_file()
    with pytest.raises(httpx.ConnectError):  # without --serve the services stopped
        httpx.get(f"http://127.0.0.1:{blue}/")


def test_demo_missing_data_explains_where_to_put_it(tmp_path, capsys):
    code = main(["--home", str(tmp_path / "home"), "demo", "--data",
                 str(tmp_path / "data" / "datasets.h5")])

    assert code == 2
    message = capsys.readouterr().err
    assert message.startswith(f"itsacat demo: error: no data set at {tmp_path}/data/datasets.h5."
                              " Put the reference datasets.h5")
    assert "ITSACAT_DATA=path/to/folder make demo" in message


def test_up_inbox_upload_then_ctrl_c(tmp_path, small_inputs):
    data, params = small_inputs
    home = tmp_path / "home"
    blue, green, admin = free_port(), free_port(), free_port()
    up = subprocess.Popen(
        cli_command(home, "up", "--blue-port", str(blue), "--green-port", str(green),
                    "--admin-port", str(admin), "--epochs", "5", "--approval", "auto",
                    "--min-accuracy", "0"),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        # As when a shell starts it in the background: SIGINT arrives ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        banner = _read_banner(up)
        inbox = home / "inbox" / "training_input"
        shutil.copy(params, inbox / "parameters.json")
        shutil.copy(data, inbox / "cats.h5.partial")
        os.rename(inbox / "cats.h5.partial", inbox / "cats.h5")
        version = _wait_for_blue(home, timeout=120)
        children = _children_of(up.pid)

        assert served_version(f"http://127.0.0.1:{blue}") == version
        up.send_signal(signal.SIGINT)
        assert up.wait(60) == 0
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()

    assert banner[0] == f"blue  (production): http://127.0.0.1:{blue}\n"
    assert banner[2] == (f"admin (approvals):  http://127.0.0.1:{admin} (refuses every "
                         "request: ITSACAT_ADMIN_TOKEN is not set)\n")
    assert banner[3].startswith("waiting for data sets: copy NAME.h5")
    assert len(children) == 2
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    for port in (blue, green, admin):
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/")


def test_pipeline_status_shows_why_an_execution_stopped(live, capsys):
    home, registry, config = live
    from itsacat.pipeline import ExecutionSettings, Executor, create_execution
    from tests.pipeline.conftest import register_model

    version = register_model(registry, 0.1, seed=40)
    execution = create_execution(registry, ExecutionSettings(
        kind="deliver", config=config.replace(gates__min_test_accuracy=0.5),
        model_version_id=version.id), "test")
    Executor(registry, home).run(execution.id)
    capsys.readouterr()

    assert main(["--home", str(home), "pipeline", "status", execution.id]) == 0

    out = capsys.readouterr().out
    assert out.startswith(f"execution {execution.id}: failed (trigger: test, model version: "
                          f"{version.id})\n")
    assert out.endswith("stopped at gate: 1 blocking gate(s) failed: min_test_accuracy: test "
                        "accuracy 0.1000, minimum 0.5000\n")


def _read_banner(process: subprocess.Popen, timeout: float = 60.0) -> list[str]:
    """Read what `up` prints before it waits: up to its `approval:` line, or its exit."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout],
                     daemon=True).start()
    banner, deadline = [], time.monotonic() + timeout
    while not banner or not banner[-1].startswith("approval:"):
        try:
            banner.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
        except queue.Empty:
            raise AssertionError(f"itsacat up printed only {banner}") from None
    return banner


def _wait_for_blue(home: Path, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    with open_registry(Settings.from_env(home)) as registry:
        while time.monotonic() < deadline:
            executions = registry.list_executions(limit=1)
            if executions and executions[0].status == "succeeded":
                version = registry.slot_state("blue").version_id
                assert version == executions[0].model_version_id
                return version
            assert not executions or executions[0].status != "failed", executions
            time.sleep(0.2)
    raise AssertionError(f"no execution reached blue within {timeout} s")


def _children_of(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def test_pipeline_run_waits_for_approval_then_approve_promotes(live, tmp_path, small_inputs,
                                                                capsys):
    home, registry, config = live
    data, params = small_inputs
    services = config.services

    code = main(["--home", str(home), "pipeline", "run", "--data", str(data), "--params",
                 str(params), "--epochs", "3", "--approval", "manual", "--blue-port",
                 str(services.blue_port), "--green-port", str(services.green_port),
                 "--min-accuracy", "0", "--max-regression", "1"])

    assert code == 0
    execution = registry.list_executions(limit=1)[0]
    assert execution.status == "awaiting_approval"
    out = capsys.readouterr().out
    assert out.endswith(f"execution {execution.id}: awaiting approval; decide with\n"
                        f"  itsacat pipeline approve {execution.id} --by NAME --reason TEXT\n"
                        f"  itsacat pipeline reject {execution.id} --by NAME --reason TEXT\n")

    code = main(["--home", str(home), "pipeline", "approve", execution.id, "--by", "dana",
                 "--reason", "metrics fine"])

    assert code == 0
    assert registry.slot_state("blue").version_id == execution.model_version_id
    assert capsys.readouterr().out.endswith(
        f"execution {execution.id}: succeeded; blue serves model version "
        f"{execution.model_version_id}\n")


def test_pipeline_approve_twice_is_refused(live, capsys):
    home, registry, config = live
    execution = registry.list_executions(limit=1)[0]

    code = main(["--home", str(home), "pipeline", "approve", execution.id, "--by", "erin",
                 "--reason", "again"])

    assert code == 2
    assert capsys.readouterr().err == (
        f"itsacat pipeline: error: execution {execution.id} is {execution.status}, not "
        "awaiting_approval; only an execution whose gates passed can be approved or "
        "rejected\n")


def test_pipeline_deliver_unknown_version_fails_in_one_line(tmp_path, capsys):
    code = main(["--home", str(tmp_path / "home"), "pipeline", "deliver", "999"])

    assert code == 2
    assert capsys.readouterr().err.endswith(
        "itsacat pipeline: error: model version 999 not found in the registry; see itsacat "
        "models list\n")
