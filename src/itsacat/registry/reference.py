"""Model versions in and out of the registry as files: a run folder, or the reference pair
`params.h5` (datasets `W1…WL`, `b1…bL`) + `parameters.json`, with `classes.json` beside them.
"""

from __future__ import annotations

import json
from pathlib import Path

from itsacat.nn import Model, SpecError, load_spec
from itsacat.nn.io import (
    CLASSES_FILE,
    PARAMS_FILE,
    SPEC_FILE,
    ModelFileError,
    load_model,
    load_params_h5,
    save_model,
)
from itsacat.registry.entities import ModelVersion
from itsacat.registry.errors import RegistryError
from itsacat.registry.schema import RunStatus
from itsacat.registry.store import Registry

RESULTS_FILE = "results.json"
DEFAULT_CLASSES = ("non-cat", "cat")


def register_run(registry: Registry, run: str) -> ModelVersion:
    """Register the final model of a completed run, given its id or its folder.

    A run folder that the registry has not recorded (trained before the registry existed, or
    elsewhere) is recorded first from its results.json.
    """
    folder = Path(run)
    if not folder.is_dir():
        recorded = registry.get_run(run)
        if recorded.status != RunStatus.completed:
            raise RegistryError("run_not_completed", f"run {recorded.id} is "
                                f"{recorded.status}, not completed; only a completed run has "
                                "a final model to register")
        folder = Path(recorded.folder or "")

    results = _read_results(folder)
    try:
        model = load_model(folder)
    except ModelFileError as error:
        raise RegistryError("invalid_run_folder", f"cannot register run folder {folder}: "
                            f"{error}") from None
    recorded = registry.import_run(results, model.spec.to_json(), folder.absolute())
    return registry.register_model(model, run_id=recorded.id,
                                   dataset_digest=recorded.dataset_digest,
                                   metrics=results.get("metrics") or {}, source="run")


def import_reference_model(registry: Registry, params_h5: str | Path, spec_file: str | Path,
                           class_names: tuple[str, str] = DEFAULT_CLASSES) -> ModelVersion:
    """Register the reference pair `params.h5` + `parameters.json` as a new model version.

    The weights are checked against the spec before anything is stored. A bad file raises
    `RegistryError` (`invalid_import`) naming the file and what is wrong with it.
    """
    # Checked here because load_spec's own message points at train's --params option.
    if not Path(spec_file).is_file():
        raise RegistryError("invalid_import", f"cannot import the model: network spec "
                            f"{spec_file}: file not found; pass --spec with the path of a "
                            "parameters.json file")
    try:
        spec = load_spec(spec_file)
        params = load_params_h5(params_h5, spec)
    except (SpecError, ModelFileError) as error:
        raise RegistryError("invalid_import", f"cannot import the model: {error}") from None
    return registry.register_model(Model(spec, params, class_names), source="import")


def export_reference_model(registry: Registry, version_id: int, folder: str | Path) -> Path:
    """Write model version `version_id` as params.h5, parameters.json and classes.json.

    The artifact's digest is checked on the way. Existing model files in `folder` are not
    overwritten: the export raises `RegistryError` (`export_exists`) instead.
    """
    folder = Path(folder)
    existing = [name for name in (PARAMS_FILE, SPEC_FILE, CLASSES_FILE)
                if (folder / name).exists()]
    if existing:
        raise RegistryError("export_exists", f"cannot export model version {version_id} to "
                            f"{folder}: it already holds {', '.join(existing)}; choose an "
                            "empty or new folder")
    return save_model(registry.load_model(version_id), folder)


def parse_class_names(text: str) -> tuple[str, str]:
    """Read `non-cat,cat` as the names of class 0 and class 1."""
    names = tuple(name.strip() for name in text.split(","))
    if len(names) != 2 or not all(names) or names[0] == names[1]:
        raise RegistryError("invalid_classes", f"class names {text!r} are invalid; give two "
                            "different names separated by a comma, class 0 first, e.g. "
                            "non-cat,cat")
    return names  # type: ignore[return-value]


def parse_version_id(text: str) -> int:
    """Read a model version as users write it: `3` or `v3`."""
    value = text.strip().lower().removeprefix("v")
    if not value.isdigit() or int(value) < 1:
        raise RegistryError("invalid_version", f"model version {text!r} is invalid; write it "
                            "as a positive number such as 3 (see itsacat models list)")
    return int(value)


def _read_results(folder: Path) -> dict:
    path = folder / RESULTS_FILE
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegistryError("invalid_run_folder", f"cannot register run folder {folder}: no "
                            f"{RESULTS_FILE}; only a completed run can be registered") from None
    except (OSError, ValueError) as error:
        raise RegistryError("invalid_run_folder", f"cannot register run folder {folder}: "
                            f"{path} is unreadable ({error})") from None
    if not isinstance(results, dict) or not isinstance(results.get("run"), dict):
        raise RegistryError("invalid_run_folder", f"cannot register run folder {folder}: "
                            f"{path} has no \"run\" section; it was not written by itsacat "
                            "train")
    return results
