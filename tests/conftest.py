"""Fixtures shared by every test package: the real data under $ITSACAT_TEST_DATA and small
data made on the spot."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from itsacat.nn import parse_spec


def _shared_root() -> Path | None:
    value = os.environ.get("ITSACAT_TEST_DATA")
    return Path(value) if value else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder (datasets/, images/, cases/); skips when it is not configured."""
    root = _shared_root()
    if root is None:
        pytest.skip("ITSACAT_TEST_DATA is not set; point it at the shared data folder "
                    "(datasets/, images/, cases/) to run the tests on real data")
    if not root.is_dir():
        pytest.skip(f"ITSACAT_TEST_DATA={root} is not a folder")
    return root


@pytest.fixture(scope="session")
def real_dataset_path(shared_data: Path) -> Path:
    return shared_data / "datasets" / "datasets.h5"


@pytest.fixture(scope="session")
def real_dataset(real_dataset_path: Path):
    from itsacat.data import load_dataset
    return load_dataset(real_dataset_path)


@pytest.fixture(scope="session")
def cases(shared_data: Path) -> Path:
    return shared_data / "cases"


def write_h5_dataset(path: Path, m_train: int = 12, m_test: int = 4, seed: int = 0,
                     **overrides) -> Path:
    """Write a small data set in the reference layout; `overrides` replace or drop (None) keys.

    Class 1 pictures are brighter than class 0 pictures, so a network can learn them.
    """
    rng = np.random.default_rng(seed)

    def pictures(labels):
        base = rng.integers(0, 128, size=(len(labels), 64, 64, 3))
        return (base + 120 * labels[:, None, None, None]).astype(np.uint8)

    train_y = np.arange(m_train) % 2
    test_y = np.arange(m_test) % 2
    arrays = {"train_set_x": pictures(train_y), "train_set_y": train_y.astype(np.int64),
              "test_set_x": pictures(test_y), "test_set_y": test_y.astype(np.int64),
              "list_classes": np.array([b"non-cat", b"cat"])}
    arrays.update(overrides)
    with h5py.File(path, "w") as h5:
        for key, value in arrays.items():
            if value is not None:
                h5.create_dataset(key, data=value)
    return path


@pytest.fixture
def small_dataset_path(tmp_path: Path) -> Path:
    return write_h5_dataset(tmp_path / "small.h5")


SMALL_SPEC = {
    "epochs": 20, "layers": 3,
    "activations": {"layer1": "relu", "layer2": "relu", "layer3": "sigmoid"},
    "neurons": {"layer1": 5, "layer2": 3, "layer3": 1},
    "learning_rate": 0.01, "batch_size": 5, "threshold": 0.0,
}


@pytest.fixture
def small_spec():
    """A 5-3-1 network that trains in milliseconds."""
    return parse_spec(SMALL_SPEC, "small spec")
