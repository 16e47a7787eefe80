"""Data sets: uint8 pictures and 0/1 labels for a train and a test split, with class names.

Loaders live beside this module (`h5`, `folder`); `load_dataset` picks one from the path.
Every loader ends in `Dataset.build`, which validates shapes, dtypes and labels, so a data set
that reaches training is known to be well formed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from itsacat.data.errors import DatasetError
from itsacat.data.images import IMAGE_SIZE

IMAGE_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 3)
DEFAULT_CLASSES = ("non-cat", "cat")


@dataclass(frozen=True)
class Split:
    """One split: pictures `(m, 64, 64, 3)` uint8 and labels `(m,)` int64 in {0, 1}."""

    x: np.ndarray
    y: np.ndarray

    @property
    def m(self) -> int:
        return len(self.y)

    def X(self, dtype: str = "float64") -> np.ndarray:
        """Return the inputs as columns `(12288, m)`, scaled by 1/255.

        The array is the transpose of a C-ordered `(m, 12288)` matrix, so `X.T[idx]` gathers
        whole examples from contiguous rows; engines use that to cut minibatches cheaply.
        """
        rows = self.x.reshape(self.m, -1).astype(dtype)
        rows /= 255.0
        return rows.T

    def Y(self, dtype: str = "float64") -> np.ndarray:
        """Return the labels as a row `(1, m)`."""
        return self.y.reshape(1, -1).astype(dtype)


@dataclass(frozen=True)
class Dataset:
    """A train and a test split with the names of classes 0 and 1, and a content digest."""

    train: Split
    test: Split
    class_names: tuple[str, str]
    source: str
    digest: str

    @classmethod
    def build(cls, source: str, arrays: dict[str, np.ndarray],
              class_names: tuple[str, str] = DEFAULT_CLASSES) -> Dataset:
        """Validate the four arrays `train_set_x/_y`, `test_set_x/_y` and build a data set.

        Labels of shape (1, m) or (m, 1) are flattened to (m,); anything else that does not
        match is a `DatasetError` naming `source`, the key, what was expected and found.
        """
        splits = {}
        for split in ("train", "test"):
            x = _check_pixels(source, f"{split}_set_x", arrays[f"{split}_set_x"])
            y = _check_labels(source, f"{split}_set_y", arrays[f"{split}_set_y"])
            if len(x) != len(y):
                raise DatasetError("count_mismatch", f"data set {source}: {split}_set_x has "
                                   f"{len(x)} images but {split}_set_y has {len(y)} labels; "
                                   "every image needs exactly one label")
            if len(x) == 0:
                raise DatasetError("empty_split", f"data set {source}: the {split} split is "
                                   "empty; it needs at least one image")
            splits[split] = Split(x, y)
        digest = _digest(splits["train"], splits["test"], class_names)
        return cls(splits["train"], splits["test"], class_names, source, digest)


def _check_pixels(source: str, key: str, x: np.ndarray) -> np.ndarray:
    if x.dtype != np.uint8:
        advice = "expected uint8 pixels from 0 to 255"
        if np.issubdtype(x.dtype, np.floating) and x.size and float(np.max(x)) <= 1.0:
            advice = ("values already in [0, 1]; itsacat scales pixels itself, so store the "
                      "raw 0–255 pixels as uint8")
        raise DatasetError("invalid_pixels", f"data set {source}: {key} has dtype {x.dtype}, "
                           f"{advice}")
    if x.ndim != 4 or x.shape[1:] != IMAGE_SHAPE:
        raise DatasetError("invalid_shape", f"data set {source}: {key} has shape {x.shape}; "
                           f"expected (m, {IMAGE_SIZE}, {IMAGE_SIZE}, 3)")
    return x


def _check_labels(source: str, key: str, y: np.ndarray) -> np.ndarray:
    if y.ndim == 2 and 1 in y.shape:
        y = y.reshape(-1)
    if y.ndim != 1:
        raise DatasetError("invalid_shape", f"data set {source}: {key} has shape {y.shape}; "
                           "expected (m,), (1, m) or (m, 1)")
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_)):
        raise DatasetError("invalid_labels", f"data set {source}: {key} has dtype {y.dtype}; "
                           "expected integer labels 0 and 1")
    outside = np.setdiff1d(np.unique(y), [0, 1])
    if outside.size:
        raise DatasetError("invalid_labels", f"data set {source}: {key} contains labels "
                           f"{outside[:5].tolist()}; expected only 0 and 1")
    return y.astype(np.int64)


def _digest(train: Split, test: Split, class_names: tuple[str, str]) -> str:
    """Hash the content, not the file, so one file and a train/test pair digest alike."""
    sha = hashlib.sha256()
    for array in (train.x, train.y, test.x, test.y):
        sha.update(f"{array.dtype.str}{array.shape}".encode())
        sha.update(np.ascontiguousarray(array).tobytes())
    sha.update("\0".join(class_names).encode())
    return sha.hexdigest()


def load_dataset(path: str | Path, test_path: str | Path | None = None,
                 test_ratio: float = 0.2, seed: int = 1) -> Dataset:
    """Load a data set from an h5 file, a train/test pair of h5 files, or an image folder.

    An image folder is split into train and test by `test_ratio` and `seed`.
    """
    from itsacat.data.folder import load_image_folder
    from itsacat.data.h5 import load_h5

    path = Path(path)
    if not path.exists():
        raise DatasetError("not_found", f"data set {path}: no such file or folder; pass --data "
                           "with an .h5 file or an image folder (root/<class name>/*.jpg)")
    if path.is_dir():
        return load_image_folder(path, test_ratio=test_ratio, seed=seed)
    return load_h5(path, test_path)
