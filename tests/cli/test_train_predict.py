import json
import subprocess
import sys

import pytest

from tests.conftest import SMALL_SPEC


def itsacat(*args, home, check=False):
    """Run the real command line in a subprocess, as a user would."""
    result = subprocess.run([sys.executable, "-m", "itsacat", "--home", str(home), *args],
                            capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"itsacat {args} failed: {result.stderr}")
    return result


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "parameters.json"
    path.write_text(json.dumps(SMALL_SPEC))
    return path


@pytest.fixture
def trained_run(tmp_path, small_dataset_path, spec_file):
    out = tmp_path / "run"
    itsacat("train", "--data", str(small_dataset_path), "--params", str(spec_file),
            "--out", str(out), "--no-report", home=tmp_path / "home", check=True)
    return out


def test_train_prints_accuracy_and_writes_run_folder(tmp_path, small_dataset_path, spec_file):
    out = tmp_path / "run"
    result = itsacat("train", "--data", str(small_dataset_path), "--params", str(spec_file),
                     "--out", str(out), "--epochs", "7", "--json", "--no-report",
                     home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["run"]["epochs_completed"] == 7
    assert document["folder"] == str(out)
    assert 0.0 <= document["metrics"]["test"]["accuracy"] <= 1.0
    assert {path.name for path in out.iterdir()} >= {"results.json", "params.h5",
                                                      "parameters.json"}


def test_predict_prints_label_and_probability_per_image(trained_run, shared_data, tmp_path):
    images = sorted((shared_data / "images").glob("*.jpeg"))
    result = itsacat("predict", "--model", str(trained_run), *map(str, images),
                     home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(images) == 3
    for line, image in zip(lines, images, strict=True):
        assert line.startswith(f"{image}: ")
        assert " (p(cat)=" in line


def test_predict_json_and_bad_image_exits_nonzero(trained_run, cases, tmp_path):
    result = itsacat("predict", "--model", str(trained_run), "--json",
                     str(cases / "probe_gray64.png"), str(cases / "truncated.jpg"),
                     home=tmp_path / "home")
    assert result.returncode == 2
    predictions = json.loads(result.stdout)
    assert predictions[0]["label"] in ("cat", "non-cat")
    assert 0.0 <= predictions[0]["probability"] <= 1.0
    assert predictions[1]["error"] == "undecodable_image"


def test_predict_missing_image_prints_one_error_line(trained_run, tmp_path):
    result = itsacat("predict", "--model", str(trained_run), str(tmp_path / "nope.jpg"),
                     home=tmp_path / "home")
    assert result.returncode == 2
    assert result.stderr.endswith(f"itsacat predict: error: {tmp_path / 'nope.jpg'}: file not "
                                  "found\n")


def test_evaluate_prints_confusion_matrix(trained_run, small_dataset_path, tmp_path):
    result = itsacat("evaluate", "--model", str(trained_run), "--data",
                     str(small_dataset_path), "--json", home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    test = metrics["test"]
    assert test["tn"] + test["fp"] + test["fn"] + test["tp"] == 4
    assert set(test) >= {"accuracy", "sensitivity", "specificity", "false_positive_rate",
                         "precision", "f1", "mislabeled"}


@pytest.mark.parametrize(("args", "message"), [
    (["train", "--data", "/nonexistent/data.h5"],
     "itsacat train: error: data set /nonexistent/data.h5: no such file or folder; pass "
     "--data with an .h5 file or an image folder (root/<class name>/*.jpg)\n"),
    (["train", "--data", "x.h5", "--params", "/nonexistent/p.json"],
     "itsacat train: error: network spec /nonexistent/p.json: file not found; pass --params "
     "with the path of a parameters.json file\n"),
    (["predict", "--model", "/nonexistent/run", "a.jpg"],
     "itsacat predict: error: model /nonexistent/run: not a folder; pass the run folder or a "
     "folder with params.h5 and parameters.json\n"),
    (["train", "--data", "x.h5", "--engine", "quantum"],
     None),
])
def test_bad_input_prints_one_line_without_traceback(tmp_path, args, message):
    result = itsacat(*args, home=tmp_path / "home")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    if message is not None:
        assert result.stderr.endswith(message)
    assert result.stderr.count("\n") == 1 + result.stderr.count(" INFO ")


def test_unknown_engine_lists_available_ones(tmp_path, small_dataset_path):
    result = itsacat("train", "--data", str(small_dataset_path), "--engine", "quantum",
                     home=tmp_path / "home")
    assert result.returncode == 2
    assert "itsacat train: error: engine 'quantum' is not available; choose one of " in (
        result.stderr)
    assert "vectorized" in result.stderr


def test_resume_without_data_uses_recorded_inputs(tmp_path, small_dataset_path, spec_file):
    home, run = tmp_path / "home", tmp_path / "run"
    command = [sys.executable, "-m", "itsacat", "--home", str(home), "train", "--data",
               str(small_dataset_path), "--params", str(spec_file), "--epochs", "100000",
               "--out", str(run), "--no-report"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    for line in process.stderr:
        if "epoch 199 cost" in line:
            break
    process.terminate()
    process.communicate(timeout=60)
    assert (run / "checkpoint.npz").exists()

    # From another folder, with neither --data nor --params, and fewer epochs to finish soon.
    result = subprocess.run([sys.executable, "-m", "itsacat", "--home", str(home), "train",
                             "--resume", str(run), "--epochs", "300", "--json", "--no-report"],
                            capture_output=True, text=True, timeout=300, cwd="/")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["run"]["epochs_completed"] == 300
    assert document["run"]["dataset"] == str(small_dataset_path)


def test_train_without_data_says_what_to_pass(tmp_path):
    result = itsacat("train", home=tmp_path / "home")
    assert result.returncode == 2
    assert result.stderr.endswith("itsacat train: error: no data set given; pass --data with "
                                  "an .h5 file or an image folder (root/<class name>/*.jpg)\n")
