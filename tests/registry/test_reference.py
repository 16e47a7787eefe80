"""Model versions to and from files: run folders, and the reference params.h5 +
parameters.json pair, with the round trip checked on real predictions."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from tests.registry.conftest import make_model

from itsacat.data import load_dataset
from itsacat.nn.io import load_model, save_params_h5
from itsacat.registry import RegistryError, RunStatus
from itsacat.registry.reference import (
    export_reference_model,
    import_reference_model,
    parse_class_names,
    register_run,
)
from itsacat.training import create_engine, train


def _train_run(dataset, spec, folder: Path, epochs: int = 15):
    return train(dataset, spec.with_overrides(epochs=epochs), create_engine("vectorized"),
                 folder)


def _write_pair(folder: Path, model) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    save_params_h5(model.params, folder / "params.h5")
    (folder / "parameters.json").write_text(json.dumps(model.spec.to_json()))
    return folder / "params.h5", folder / "parameters.json"


def _assert_same_predictions(models, X) -> None:
    reference = models[0].predict_proba(X)
    for model in models[1:]:
        np.testing.assert_array_equal(model.predict_proba(X), reference)


def test_round_trip_real_data_same_predictions(registry, real_dataset, small_spec, tmp_path):
    result = _train_run(real_dataset, small_spec, tmp_path / "run")

    registered = register_run(registry, str(tmp_path / "run"))
    export_reference_model(registry, registered.id, tmp_path / "exported")
    imported = import_reference_model(registry, tmp_path / "exported" / "params.h5",
                                      tmp_path / "exported" / "parameters.json")

    X = real_dataset.test.X(small_spec.dtype)
    _assert_same_predictions([result.model, registry.load_model(registered),
                              load_model(tmp_path / "exported"), registry.load_model(imported)],
                             X)
    assert imported.artifact_sha256 == registered.artifact_sha256
    assert imported.source == "import"
    assert registered.run_id == result.run_id
    assert registered.dataset_digest == real_dataset.digest
    assert registered.metrics["test"]["accuracy"] == result.test_metrics.accuracy


def test_round_trip_small_data_same_predictions(registry, small_dataset_path, small_spec,
                                                tmp_path):
    dataset = load_dataset(small_dataset_path)
    model = make_model(small_spec, seed=9)
    params_h5, spec_file = _write_pair(tmp_path / "pair", model)

    imported = import_reference_model(registry, params_h5, spec_file, ("dog", "cat"))
    export_reference_model(registry, imported.id, tmp_path / "exported")

    exported = load_model(tmp_path / "exported")
    assert exported.class_names == ("dog", "cat")
    _assert_same_predictions([model, registry.load_model(imported.id), exported],
                             dataset.test.X(small_spec.dtype))


def test_register_run_by_id_after_recorded_training(registry, small_dataset_path, small_spec,
                                                    tmp_path):
    from itsacat.registry import RegistryRecorder

    dataset = load_dataset(small_dataset_path)
    result = train(dataset, small_spec, create_engine("vectorized"), tmp_path / "run",
                   observers=[RegistryRecorder(registry)])

    version = register_run(registry, result.run_id[:6])

    assert version.run_id == result.run_id
    assert version.metrics == result.results["metrics"]
    assert registry.get_run(result.run_id).status == RunStatus.completed


def test_register_run_folder_unknown_to_registry_records_run(registry, small_dataset_path,
                                                             small_spec, tmp_path):
    dataset = load_dataset(small_dataset_path)
    result = _train_run(dataset, small_spec, tmp_path / "run", epochs=12)

    version = register_run(registry, str(tmp_path / "run"))

    run = registry.get_run(result.run_id)
    assert run.status == RunStatus.completed
    assert run.costs == pytest.approx(tuple(result.costs))
    assert run.folder == str((tmp_path / "run").absolute())
    assert version.run_id == result.run_id


def test_register_run_not_completed_raises(registry, small_spec):
    registry.start_run("running1", spec=small_spec.to_json(), folder="/r", dataset_digest="d",
                       dataset_source="s", engine="vectorized", code_version="0.1.0")

    with pytest.raises(RegistryError) as raised:
        register_run(registry, "running1")

    assert raised.value.code == "run_not_completed"
    assert str(raised.value) == ("run running1 is running, not completed; only a completed "
                                 "run has a final model to register")


def test_register_run_unknown_id_raises(registry):
    with pytest.raises(RegistryError) as raised:
        register_run(registry, "feedbeef")

    assert raised.value.code == "run_not_found"
    assert str(raised.value) == "run 'feedbeef' not found in the registry; see itsacat runs list"


def test_register_run_folder_without_results_raises(registry, tmp_path):
    (tmp_path / "half").mkdir()

    with pytest.raises(RegistryError) as raised:
        register_run(registry, str(tmp_path / "half"))

    assert raised.value.code == "invalid_run_folder"
    assert str(raised.value) == (f"cannot register run folder {tmp_path / 'half'}: no "
                                 "results.json; only a completed run can be registered")


def _import_error(registry, params_h5, spec_file) -> str:
    with pytest.raises(RegistryError) as raised:
        import_reference_model(registry, params_h5, spec_file)
    assert raised.value.code == "invalid_import"
    assert raised.value.http_status == 400
    assert registry.list_versions() == []
    return str(raised.value)


def test_import_missing_params_file_raises(registry, small_spec, tmp_path):
    _, spec_file = _write_pair(tmp_path, make_model(small_spec))

    message = _import_error(registry, tmp_path / "absent.h5", spec_file)

    assert message == (f"cannot import the model: model weights {tmp_path / 'absent.h5'}: "
                       "file not found")


def test_import_params_not_hdf5_raises(registry, small_spec, tmp_path):
    _, spec_file = _write_pair(tmp_path, make_model(small_spec))
    (tmp_path / "text.h5").write_text("W1 = [[1, 2]]\n")

    message = _import_error(registry, tmp_path / "text.h5", spec_file)

    assert message.startswith(f"cannot import the model: model weights {tmp_path / 'text.h5'}: "
                              "not a readable HDF5 file (")


def test_import_params_missing_layer_raises(registry, small_spec, tmp_path):
    params_h5, spec_file = _write_pair(tmp_path, make_model(small_spec))
    with h5py.File(params_h5, "a") as h5:
        del h5["W2"]

    message = _import_error(registry, params_h5, spec_file)

    assert message == (f"cannot import the model: model weights {params_h5}: missing dataset "
                       "'W2' for a 3-layer network")


def test_import_params_wrong_shape_raises(registry, small_spec, tmp_path):
    params_h5, spec_file = _write_pair(tmp_path, make_model(small_spec))
    with h5py.File(params_h5, "a") as h5:
        del h5["W2"]
        h5.create_dataset("W2", data=np.zeros((4, 5)))

    message = _import_error(registry, params_h5, spec_file)

    assert message == (f"cannot import the model: model weights {params_h5}: W2 has shape "
                       "(4, 5), expected (3, 5) from the network spec")


def test_import_bad_spec_raises_naming_key(registry, small_spec, tmp_path):
    params_h5, spec_file = _write_pair(tmp_path, make_model(small_spec))
    spec_file.write_text(json.dumps(small_spec.to_json() | {"learning_rate": "fast"}))

    message = _import_error(registry, params_h5, spec_file)

    assert message == (f"cannot import the model: network spec {spec_file}: learning_rate "
                       "must be a number, found 'fast'")


@pytest.mark.parametrize("text", ["cat", "non-cat,cat,dog", "cat,cat", ",cat"])
def test_parse_class_names_invalid_raises(text):
    with pytest.raises(RegistryError) as raised:
        parse_class_names(text)

    assert raised.value.code == "invalid_classes"
    assert str(raised.value) == (f"class names {text!r} are invalid; give two different names "
                                 "separated by a comma, class 0 first, e.g. non-cat,cat")


def test_export_into_folder_with_model_files_raises(registry, small_spec, tmp_path):
    version = registry.register_model(make_model(small_spec), source="import")
    (tmp_path / "params.h5").write_bytes(b"keep me")

    with pytest.raises(RegistryError) as raised:
        export_reference_model(registry, version.id, tmp_path)

    assert raised.value.code == "export_exists"
    assert str(raised.value) == (f"cannot export model version 1 to {tmp_path}: it already "
                                 "holds params.h5; choose an empty or new folder")
    assert (tmp_path / "params.h5").read_bytes() == b"keep me"
