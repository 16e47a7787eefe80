import json

import pytest

from itsacat.cli import main
from tests.conftest import SMALL_SPEC

from .conftest import free_port


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "parameters.json"
    path.write_text(json.dumps(SMALL_SPEC | {"epochs": 5}))
    return path


def test_train_serverless_threads_redis_from_environment(tmp_path, small_dataset_path,
                                                         spec_file, redis_url, monkeypatch):
    monkeypatch.setenv("ITSACAT_PARAM_STORE", redis_url)
    out = tmp_path / "run"

    status = main(["--home", str(tmp_path / "home"), "train", "--engine", "serverless",
                   "--executor", "threads", "--data", str(small_dataset_path), "--params",
                   str(spec_file), "--out", str(out), "--no-report"])

    assert status == 0
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["engine"] == "serverless"
    assert len(results["epoch_stats"]) == 5
    # 12 examples in minibatches of 5: 3 minibatches of 1 + 6 trainer and 18 neuron steps.
    assert [stats["invocations"] for stats in results["epoch_stats"]] == [77] * 5
    assert set(results["epoch_stats"][0]) == {"invocations", "retries", "duplicates",
                                              "bytes", "seconds"}


def test_train_serverless_unreachable_store_exits_2(tmp_path, small_dataset_path, spec_file,
                                                    capsys):
    url = f"redis://127.0.0.1:{free_port()}/0"

    status = main(["--home", str(tmp_path / "home"), "train", "--engine", "serverless",
                   "--param-store", url, "--data", str(small_dataset_path), "--params",
                   str(spec_file), "--out", str(tmp_path / "run"), "--no-report"])

    assert status == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"itsacat train: error: parameter store {url} is unreachable (")
    assert error.endswith("then continue the run with `itsacat train --resume <run folder>`")
