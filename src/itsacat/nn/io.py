"""The reference model files: `params.h5` (datasets `W1…WL`, `b1…bL`) and `parameters.json`.

A model folder holds both, plus `classes.json` with the class names when they are not the
reference ones. Files are written to a temporary name and renamed, so a crash never leaves a
half-written model behind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from itsacat.nn.model import Model
from itsacat.nn.network import Parameters
from itsacat.nn.spec import NetworkSpec, SpecError, load_spec

PARAMS_FILE = "params.h5"
SPEC_FILE = "parameters.json"
CLASSES_FILE = "classes.json"


class ModelFileError(ValueError):
    """A model folder or params.h5 that cannot be read; the message names the file."""

    code = "invalid_model"


def save_params_h5(params: Parameters, path: str | Path) -> None:
    """Write `W1…WL` and `b1…bL` to an HDF5 file, atomically."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with h5py.File(temporary, "w") as h5:
        for l in range(1, params.layers + 1):
            h5.create_dataset(f"W{l}", data=params.W[l])
            h5.create_dataset(f"b{l}", data=params.b[l])
    os.replace(temporary, path)


def load_params_h5(path: str | Path, spec: NetworkSpec) -> Parameters:
    """Read `W1…WL`, `b1…bL` from an HDF5 file and check their shapes against `spec`."""
    path = Path(path)
    try:
        h5 = h5py.File(path, "r")
    except FileNotFoundError:
        raise ModelFileError(f"model weights {path}: file not found") from None
    except OSError as error:
        raise ModelFileError(f"model weights {path}: not a readable HDF5 file ({error})") from None

    W, b = {}, {}
    with h5:
        for l in range(1, spec.layers + 1):
            for name, store in ((f"W{l}", W), (f"b{l}", b)):
                if name not in h5:
                    raise ModelFileError(f"model weights {path}: missing dataset {name!r} for a "
                                         f"{spec.layers}-layer network")
                store[l] = np.asarray(h5[name], dtype=spec.dtype)
    _check_shapes(W, b, spec, path)
    return Parameters(W, b)


def _check_shapes(W: dict, b: dict, spec: NetworkSpec, path: Path) -> None:
    previous = W[1].shape[1]
    for l in range(1, spec.layers + 1):
        expected_W = (spec.neurons[l - 1], previous)
        if W[l].shape != expected_W:
            raise ModelFileError(f"model weights {path}: W{l} has shape {W[l].shape}, "
                                 f"expected {expected_W} from the network spec")
        if b[l].shape != (spec.neurons[l - 1], 1):
            raise ModelFileError(f"model weights {path}: b{l} has shape {b[l].shape}, "
                                 f"expected {(spec.neurons[l - 1], 1)}")
        previous = spec.neurons[l - 1]


def save_model(model: Model, folder: str | Path) -> Path:
    """Write `params.h5`, `parameters.json` and `classes.json` into `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_params_h5(model.params, folder / PARAMS_FILE)
    write_json_atomic(folder / SPEC_FILE, model.spec.to_json())
    write_json_atomic(folder / CLASSES_FILE, list(model.class_names))
    return folder


def load_model(folder: str | Path) -> Model:
    """Read a model folder written by `save_model` or by the reference design."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFileError(f"model {folder}: not a folder; pass the run folder or a folder "
                             f"with {PARAMS_FILE} and {SPEC_FILE}")
    try:
        spec = load_spec(folder / SPEC_FILE)
    except SpecError as error:
        raise ModelFileError(str(error)) from None
    params = load_params_h5(folder / PARAMS_FILE, spec)

    class_names = ("non-cat", "cat")
    classes_path = folder / CLASSES_FILE
    if classes_path.exists():
        names = json.loads(classes_path.read_text(encoding="utf-8"))
        if not (isinstance(names, list) and len(names) == 2
                and all(isinstance(name, str) for name in names)):
            raise ModelFileError(f"model {classes_path}: expected a list of two class names, "
                                 f"found {names!r}")
        class_names = (names[0], names[1])
    return Model(spec, params, class_names)


def write_json_atomic(path: str | Path, document: object) -> None:
    """Write JSON to a temporary name in the same folder, then rename it over `path`."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)
