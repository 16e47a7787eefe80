"""Image folders: `root/<class name>/*.jpg|png|…`, two classes, split into train and test.

Class 1 (the positive class) is the folder named `cat` when there is one, otherwise the second
folder in alphabetical order. Every picture goes through `decode_image`, the same function the
prediction service uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from itsacat.data.dataset import Dataset
from itsacat.data.errors import DatasetError, ImageError
from itsacat.data.images import load_image_file

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"}
POSITIVE_CLASS = "cat"


def load_image_folder(root: str | Path, test_ratio: float = 0.2, seed: int = 1) -> Dataset:
    """Load pictures from two class folders and split them by `test_ratio` with `seed`.

    Each class is split on its own, so both splits keep the class balance.
    """
    root = Path(root)
    if not 0.0 < test_ratio < 1.0:
        raise DatasetError("invalid_split", f"data set {root}: test ratio {test_ratio} must be "
                           "between 0 and 1")
    class_dirs = sorted(path for path in root.iterdir() if path.is_dir()
                        and not path.name.startswith("."))
    if len(class_dirs) != 2:
        raise DatasetError("invalid_classes", f"data set {root}: found "
                           f"{len(class_dirs)} class folders {[p.name for p in class_dirs]}; "
                           "expected exactly two, such as cat/ and non-cat/")
    names = [path.name for path in class_dirs]
    if POSITIVE_CLASS in names and names[1] != POSITIVE_CLASS:
        class_dirs.reverse()

    rng = np.random.default_rng(seed)
    parts: dict[str, list] = {"train_x": [], "train_y": [], "test_x": [], "test_y": []}
    for label, folder in enumerate(class_dirs):
        pixels = [_load(path) for path in sorted(folder.iterdir())
                  if path.suffix.lower() in IMAGE_SUFFIXES]
        if not pixels:
            raise DatasetError("empty_split", f"data set {root}: class folder {folder.name}/ "
                               f"holds no pictures ({', '.join(sorted(IMAGE_SUFFIXES))})")
        order = rng.permutation(len(pixels))
        n_test = max(1, round(len(pixels) * test_ratio)) if len(pixels) > 1 else 0
        for rank, index in enumerate(order):
            split = "test" if rank < n_test else "train"
            parts[f"{split}_x"].append(pixels[index])
            parts[f"{split}_y"].append(label)

    arrays = {
        f"{split}_set_{axis}": np.array(parts[f"{split}_{axis}"],
                                        dtype=np.uint8 if axis == "x" else np.int64)
        .reshape((-1, 64, 64, 3) if axis == "x" else (-1,))
        for split in ("train", "test") for axis in ("x", "y")
    }
    return Dataset.build(str(root), arrays, (class_dirs[0].name, class_dirs[1].name))


def _load(path: Path) -> np.ndarray:
    try:
        return load_image_file(path).pixels
    except ImageError as error:
        raise DatasetError("invalid_image", f"data set image {error.message}; fix or remove "
                           "the file") from None
