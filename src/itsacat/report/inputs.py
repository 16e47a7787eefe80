"""The report's inputs: the run folder, the data set the run was trained on, and a folder of
labeled photographs. Each bad input raises a `ReportError` that names it."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from itsacat.data import (
    Dataset,
    DecodedImage,
    ImageError,
    load_dataset,
    load_image_file,
    to_input_column,
)
from itsacat.nn import Model
from itsacat.nn.insight import read_insight
from itsacat.nn.io import load_model
from itsacat.report.errors import ReportError

RESULTS_FILE = "results.json"
CHECKPOINT_FILE = "checkpoint.npz"
LABELS_FILE = "labels.csv"
LABEL_COLUMNS = ("file", "label")


@dataclass(frozen=True)
class RunRecord:
    """A finished run, read from its folder."""

    folder: Path
    results: dict[str, Any]  # the decoded results.json
    model: Model
    insight: dict[str, Any] | None  # the decoded insight.json, None for runs without one

    @property
    def run(self) -> dict[str, Any]:
        return self.results.get("run", {})

    @property
    def costs(self) -> list[float]:
        """Return the cost of each epoch, epoch 0 first, from the `epoch<N>` entries."""
        epochs = sorted(int(key[len("epoch"):]) for key in self.results
                        if key.startswith("epoch") and key[len("epoch"):].isdigit())
        return [float(self.results[f"epoch{epoch}"]["cost"]) for epoch in epochs]


@dataclass(frozen=True)
class LabeledPhoto:
    """One row of labels.csv with its decoded picture."""

    file: str
    label: int  # index of the class in the model's class names
    note: str
    image: DecodedImage


def read_run(folder: str | Path) -> RunRecord:
    """Read results.json, the model and insight.json from a finished run's folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReportError("run_not_found", f"run folder {folder} not found; pass the folder "
                          f"of a finished run, the one that holds {RESULTS_FILE}")
    results_path = folder / RESULTS_FILE
    if not results_path.exists():
        hint = (f"the run has not finished, so resume it with itsacat train --resume {folder}"
                if (folder / CHECKPOINT_FILE).exists()
                else "it is not the folder of a finished run")
        raise ReportError("no_results", f"run folder {folder} has no {RESULTS_FILE}; {hint}")
    try:
        results = json.loads(results_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReportError("invalid_results", f"run results {results_path} cannot be read "
                          f"({error}); it is damaged, so train the run again") from None
    if not isinstance(results, dict):
        raise ReportError("invalid_results", f"run results {results_path}: expected a JSON "
                          f"object, found {type(results).__name__}")
    return RunRecord(folder, results, load_model(folder), read_insight(folder))


def load_run_dataset(record: RunRecord, data: str | Path | Dataset | None = None,
                     test_data: str | Path | None = None, test_ratio: float = 0.2
                     ) -> Dataset:
    """Load the data set the run was trained on and check its digest.

    `data` defaults to the path recorded in results.json. A train/test pair is recorded as
    `train.h5 + test.h5`. An image folder is split again with the run's seed and
    `test_ratio`. Raises `ReportError` when the files are missing or their content differs
    from what the run recorded.
    """
    recorded = record.run.get("dataset")
    if isinstance(data, Dataset):
        dataset = data
    else:
        dataset = _load_dataset(record, data, test_data, test_ratio, recorded)

    expected = record.run.get("dataset_digest")
    if expected and dataset.digest != expected:
        raise ReportError("dataset_mismatch", f"data set {dataset.source} has digest "
                          f"{dataset.digest[:12]}, but run folder {record.folder} was trained "
                          f"on {recorded} with digest {expected[:12]}; pass --data with the "
                          "data set the run was trained on")
    return dataset


def _load_dataset(record: RunRecord, data: str | Path | None, test_data: str | Path | None,
                  test_ratio: float, recorded: str | None) -> Dataset:
    if data is None:
        if not recorded:
            raise ReportError("no_dataset", f"run folder {record.folder}: {RESULTS_FILE} "
                              "records no data set path; pass --data")
        # NOTE: a relative path is recorded as `itsacat train` received it, so it resolves
        # only from the folder training ran in; from elsewhere the user passes --data.
        paths = [Path(part) for part in recorded.split(" + ")]
        for path in paths:
            if not path.exists():
                raise ReportError("dataset_not_found", f"data set {path}, recorded by run "
                                  f"folder {record.folder}, not found; pass --data with its "
                                  "current path")
        data, test_data = paths[0], paths[1] if len(paths) > 1 else test_data
    return load_dataset(data, test_data, test_ratio=test_ratio, seed=record.model.spec.seed)


def read_labeled_photos(folder: str | Path, class_names: tuple[str, str]
                        ) -> list[LabeledPhoto]:
    """Read `folder/labels.csv` (columns `file`, `label`, optional `note`) and decode each
    picture it lists. Labels are class names of the model."""
    folder = Path(folder)
    labels_path = folder / LABELS_FILE
    if not folder.is_dir():
        raise ReportError("photos_not_found", f"labeled photographs folder {folder} not "
                          f"found; pass --images with a folder that holds {LABELS_FILE}")
    if not labels_path.is_file():
        raise ReportError("labels_not_found", f"labeled photographs {labels_path} not found; "
                          "write it with the header file,label and one row per picture")

    with labels_path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [name for name in LABEL_COLUMNS if name not in (reader.fieldnames or [])]
        if missing:
            raise ReportError("invalid_labels", f"labeled photographs {labels_path}: the "
                              f"header has no column {', '.join(missing)}; expected the header "
                              "file,label")
        photos = [_read_row(folder, labels_path, reader.line_num, row, class_names)
                  for row in reader]
    if not photos:
        raise ReportError("invalid_labels", f"labeled photographs {labels_path} lists no "
                          "pictures; add one row file,label per picture")
    return photos


def _read_row(folder: Path, labels_path: Path, line: int, row: dict[str, str],
              class_names: tuple[str, str]) -> LabeledPhoto:
    where = f"labeled photographs {labels_path} line {line}"
    file, label = (row.get("file") or "").strip(), (row.get("label") or "").strip()
    if label not in class_names:
        raise ReportError("unknown_label", f"{where}: label {label!r} is not a class of the "
                          f"model; expected {class_names[0]!r} or {class_names[1]!r}")
    path = (folder / file).resolve()
    if not file or not path.is_relative_to(folder.resolve()):
        raise ReportError("invalid_labels", f"{where}: file {file!r} must name a picture "
                          f"inside {folder}")
    if not path.is_file():
        raise ReportError("photo_not_found", f"{where}: picture {file!r} not found in "
                          f"{folder}")
    try:
        image = load_image_file(path)
    except ImageError as error:
        raise ReportError("invalid_photo", f"{where}: {error.message}") from None
    return LabeledPhoto(file, class_names.index(label), (row.get("note") or "").strip(), image)


def photo_inputs(photos: list[LabeledPhoto], dtype: str) -> np.ndarray:
    """Return the photos as model input columns `(12288, n)`, prepared as serving prepares
    a picture."""
    return np.hstack([to_input_column(photo.image.pixels, dtype) for photo in photos])
