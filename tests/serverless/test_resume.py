"""Runs that are disturbed from outside: a training process killed with SIGKILL mid-run, a
Redis server that goes away mid-run. Each resumes and ends with the undisturbed weights."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from itsacat.data import load_dataset
from itsacat.nn import parse_spec
from itsacat.nn.io import load_model
from itsacat.serverless.engine import ServerlessEngine
from itsacat.training import train
from itsacat.training.run import CHECKPOINT_FILE, RESULTS_FILE
from tests.conftest import SMALL_SPEC, write_h5_dataset

EPOCHS = 100


@pytest.fixture
def run_inputs(tmp_path):
    data = write_h5_dataset(tmp_path / "data.h5", m_train=40, m_test=8, seed=4)
    spec_document = SMALL_SPEC | {"epochs": EPOCHS, "batch_size": 8}
    spec_path = tmp_path / "parameters.json"
    spec_path.write_text(json.dumps(spec_document))
    return data, spec_path, parse_spec(spec_document)


def itsacat(tmp_path, *args, **popen):
    command = [sys.executable, "-m", "itsacat", "--home", str(tmp_path / "home"), *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **popen)


def checkpoint_epoch(folder) -> int:
    path = folder / CHECKPOINT_FILE
    if not path.exists():
        return 0
    try:
        with np.load(path) as archive:
            return json.loads(archive["meta"].tobytes().decode())["next_epoch"]
    except (OSError, ValueError, KeyError):  # caught while being replaced
        return 0


def undisturbed_weights(data, spec, folder, **options):
    engine = ServerlessEngine(**options)
    return train(load_dataset(data), spec, engine, folder).model.params


def test_train_killed_mid_run_resumes_to_same_weights(tmp_path, run_inputs):
    data, spec_path, spec = run_inputs
    folder = tmp_path / "run"
    arguments = ["--engine", "serverless", "--data", str(data), "--params", str(spec_path)]
    process = itsacat(tmp_path, "train", *arguments, "--out", str(folder),
                      "--checkpoint-every", "10", "--no-report")

    deadline = time.monotonic() + 120
    while checkpoint_epoch(folder) < 20 and process.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint at epoch 20 within 120 s"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

    assert process.returncode == -signal.SIGKILL
    killed_at = checkpoint_epoch(folder)
    assert 20 <= killed_at < EPOCHS
    assert not (folder / RESULTS_FILE).exists()

    resumed = itsacat(tmp_path, "train", *arguments, "--resume", str(folder), "--no-report")
    _, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr

    expected = undisturbed_weights(data, spec, tmp_path / "undisturbed")
    results = json.loads((folder / RESULTS_FILE).read_text())
    assert load_model(folder).params.max_abs_difference(expected) == 0.0
    assert results["run"]["epochs_completed"] == EPOCHS
    assert len(results["epoch_stats"]) == EPOCHS
    assert results["epoch_stats"][-1]["invocations"] == 5 * (1 + 6 + 18) + 2


class StopRedisAfter:
    """Observer that kills the run's own Redis server once `epochs` epochs are done."""

    def __init__(self, server, epochs):
        self.server, self.epochs, self.stopped = server, epochs, []

    def run_started(self, *args):
        pass

    def epoch_finished(self, run_id, epoch, cost, stats, elapsed):
        if epoch + 1 == self.epochs:
            self.server.stop()

    def run_finished(self, result):
        pass

    def run_stopped(self, run_id, status, message):
        self.stopped.append((status, message))


def test_redis_gone_mid_run_fails_then_resumes(tmp_path, run_inputs, own_redis):
    data, _, spec = run_inputs
    spec = spec.with_overrides(epochs=30)
    folder = tmp_path / "run"
    observer = StopRedisAfter(own_redis, 15)

    with pytest.raises(Exception) as raised:
        train(load_dataset(data), spec, ServerlessEngine(param_store=own_redis.url,
                                                         max_attempts=2),
              folder, observers=[observer])

    message = raised.value.message
    assert raised.value.code == "invocation_failed"
    assert message.startswith("invocation e15/launch/start_epoch (launch) failed after 2 "
                              f"attempts: parameter store {own_redis.url} is unreachable (")
    assert ("check that Redis is running there, then continue the run with "
            "`itsacat train --resume <run folder>`; event ") in message
    assert observer.stopped == [("failed", message)]
    assert checkpoint_epoch(folder) == 15

    own_redis.start()
    resumed = train(load_dataset(data), spec, ServerlessEngine(param_store=own_redis.url),
                    folder, resume=True)

    expected = undisturbed_weights(data, spec, tmp_path / "undisturbed")
    assert resumed.model.params.max_abs_difference(expected) == 0.0
    assert len(resumed.costs) == 30
