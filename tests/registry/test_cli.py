"""`itsacat runs` and `itsacat models` through the real command line, in process."""

from __future__ import annotations

import json

import pytest
from tests.conftest import SMALL_SPEC
from tests.registry.conftest import settings_env

from itsacat.cli import main

# The command line is the same on every backend; the store tests cover both.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


@pytest.fixture
def itsacat(settings, registry, monkeypatch, capsys):
    """Run `itsacat ARGS…` on the test's registry, already created so that no migration is
    logged; return (exit status, stdout, stderr)."""
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)

    def run(*args: str):
        status = main(list(args))
        captured = capsys.readouterr()
        return status, captured.out, captured.err
    return run


@pytest.fixture
def trained(itsacat, tmp_path, small_dataset_path):
    spec_file = tmp_path / "parameters.json"
    spec_file.write_text(json.dumps(SMALL_SPEC))
    status, out, err = itsacat("train", "--data", str(small_dataset_path), "--params",
                               str(spec_file), "--out", str(tmp_path / "run"), "--no-report",
                               "--json")
    assert status == 0, err
    return json.loads(out)["run"]["id"]


def test_runs_list_and_show_print_recorded_run(itsacat, trained):
    status, out, _ = itsacat("runs", "list")
    assert status == 0
    assert trained in out
    assert "completed" in out

    status, out, _ = itsacat("runs", "show", trained, "--json")
    document = json.loads(out)
    assert status == 0
    assert document["id"] == trained
    assert document["status"] == "completed"
    assert len(document["costs"]) == SMALL_SPEC["epochs"]


def test_runs_show_accepts_run_folder(itsacat, trained, tmp_path):
    status, out, err = itsacat("runs", "show", str(tmp_path / "run"), "--json")
    assert status == 0, err
    assert json.loads(out)["id"] == trained


def test_models_register_promote_rollback_export(itsacat, trained, tmp_path):
    status, out, err = itsacat("models", "register", trained, "--json")
    assert status == 0, err
    assert json.loads(out)["id"] == 1
    status, out, err = itsacat("models", "import", "--params-h5", str(tmp_path / "run" /
                               "params.h5"), "--spec", str(tmp_path / "run" /
                               "parameters.json"), "--classes", "dog,cat", "--json")
    assert status == 0, err
    imported = json.loads(out)
    assert (imported["id"], imported["class_names"], imported["source"]) == (
        2, ["dog", "cat"], "import")

    assert itsacat("models", "promote", "1", "--slot", "blue")[0] == 0
    status, out, _ = itsacat("models", "promote", "2", "--slot", "blue", "--expect", "1",
                             "--by", "alice", "--reason", "gates passed", "--json")
    change = json.loads(out)
    assert status == 0
    assert (change["from_version_id"], change["to_version_id"], change["by"],
            change["reason"], change["generation"]) == (1, 2, "alice", "gates passed", 2)

    status, out, _ = itsacat("models", "rollback", "--by", "bob")
    assert status == 0
    assert out == "slot blue: 2 -> 1 (rollback by bob, generation 3)\n"

    status, _, err = itsacat("models", "rollback", "--expect", "2")
    assert status == 2
    assert err.endswith("slot blue holds model version 1, but the caller expected model "
                        "version 2; another change came first, so read the slot again and "
                        "retry with --expect 1\n")

    status, out, _ = itsacat("models", "list", "--json")
    assert json.loads(out)["slots"] == {"blue": 1, "green": None}

    status, out, _ = itsacat("models", "export", "2", str(tmp_path / "exported"))
    assert status == 0
    assert out == f"exported model version 2 to {tmp_path / 'exported'}\n"
    assert sorted(path.name for path in (tmp_path / "exported").iterdir()) == [
        "classes.json", "parameters.json", "params.h5"]


def test_models_promote_stale_expectation_exits_2(itsacat, trained):
    itsacat("models", "register", trained)
    itsacat("models", "promote", "1", "--slot", "green")

    status, out, err = itsacat("models", "promote", "1", "--slot", "green", "--expect", "none")

    assert status == 2
    assert out == ""
    assert err == ("itsacat models: error: slot green holds model version 1, but the caller "
                   "expected an empty slot; another change came first, so read the slot again "
                   "and retry with --expect 1\n")


@pytest.mark.parametrize(("args", "message"), [
    (("models", "show", "99"),
     "model version 99 not found in the registry; see itsacat models list"),
    (("models", "show", "latest"),
     "model version 'latest' is invalid; write it as a positive number such as 3 (see "
     "itsacat models list)"),
    (("models", "promote", "1", "--slot", "red"),
     "slot 'red' does not exist; choose one of blue, green"),
    (("models", "rollback", "--slot", "green"),
     "slot green has no previous model version to roll back to; promote a version instead"),
    (("runs", "show", "0000"),
     "run '0000' not found in the registry; see itsacat runs list"),
    (("models", "register", "0000"),
     "run '0000' not found in the registry; see itsacat runs list"),
    (("models", "import", "--params-h5", "absent.h5", "--spec", "absent.json"),
     "cannot import the model: network spec absent.json: file not found; pass --spec with "
     "the path of a parameters.json file"),
    (("models", "import", "--params-h5", "a.h5", "--spec", "a.json", "--classes", "cat"),
     "class names 'cat' are invalid; give two different names separated by a comma, class 0 "
     "first, e.g. non-cat,cat"),
])
def test_models_bad_input_exits_2_with_message(itsacat, args, message):
    status, out, err = itsacat(*args)

    assert status == 2
    assert err == f"itsacat {args[0]}: error: {message}\n"
