"""The reference h5 layout: `train_set_x`, `train_set_y`, `test_set_x`, `test_set_y` and
`list_classes`, in one file or split into a train file and a test file."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from itsacat.data.dataset import DEFAULT_CLASSES, Dataset
from itsacat.data.errors import DatasetError

SPLIT_KEYS = ("train_set_x", "train_set_y", "test_set_x", "test_set_y")


def load_h5(path: str | Path, test_path: str | Path | None = None) -> Dataset:
    """Load the reference layout from one file, or from a train file and a test file."""
    files = [Path(path)] if test_path is None else [Path(path), Path(test_path)]
    arrays: dict[str, np.ndarray] = {}
    class_names = None
    for file in files:
        found, names = _read_file(file)
        arrays.update(found)
        class_names = class_names or names

    source = " + ".join(str(file) for file in files)
    for key in SPLIT_KEYS:
        if key not in arrays:
            where = source if len(files) == 1 else "either file"
            raise DatasetError("missing_key", f"data set {source}: key {key!r} not found in "
                               f"{where}; the reference layout needs {', '.join(SPLIT_KEYS)}")
    return Dataset.build(source, arrays, class_names or DEFAULT_CLASSES)


def _read_file(path: Path) -> tuple[dict[str, np.ndarray], tuple[str, str] | None]:
    try:
        h5 = h5py.File(path, "r")
    except FileNotFoundError:
        raise DatasetError("not_found", f"data set {path}: file not found; check the path "
                           "given with --data or --test-data") from None
    except OSError as error:
        raise DatasetError("unreadable", f"data set {path}: not a readable HDF5 file "
                           f"({error}); is the upload complete?") from None

    with h5:
        arrays = {}
        for key in SPLIT_KEYS:
            if key in h5:
                if not isinstance(h5[key], h5py.Dataset):
                    raise DatasetError("invalid_shape", f"data set {path}: {key!r} is a group, "
                                       "expected an array")
                arrays[key] = np.asarray(h5[key])
        class_names = _read_classes(path, h5) if "list_classes" in h5 else None
    return arrays, class_names


def _read_classes(path: Path, h5: h5py.File) -> tuple[str, str]:
    raw = np.asarray(h5["list_classes"]).reshape(-1)
    names = [item.decode("utf-8") if isinstance(item, bytes) else str(item) for item in raw]
    if len(names) != 2:
        raise DatasetError("invalid_classes", f"data set {path}: list_classes has "
                           f"{len(names)} names {names[:5]}; expected two (class 0, class 1)")
    return names[0], names[1]
