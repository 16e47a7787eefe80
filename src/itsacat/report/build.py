"""Build a run's report: evaluate the model again on its data set, draw the plots, and write
`report.html` with the PNG figures beside it."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from itsacat.data import Dataset, Split
from itsacat.nn import Model
from itsacat.report import figures
from itsacat.report.html import (
    PictureItem,
    gallery_section,
    insight_section,
    metrics_table,
    photos_section,
    plot_section,
    render_page,
    summary_section,
)
from itsacat.report.inputs import (
    LabeledPhoto,
    RunRecord,
    load_run_dataset,
    photo_inputs,
    read_labeled_photos,
    read_run,
)
from itsacat.report.metrics import Metrics, evaluate_predictions

log = logging.getLogger(__name__)

REPORT_DIR = "report"
REPORT_FILE = "report.html"
SPLITS = ("train", "test")
CONFUSION_FIELDS = ("tn", "fp", "fn", "tp")


@dataclass(frozen=True)
class SplitEvaluation:
    """The model's predictions on one split and the metrics they give."""

    metrics: Metrics
    probabilities: np.ndarray  # (m,) probability of the positive class
    predicted: np.ndarray  # (m,) predicted class index


def write_report(run_folder: str | Path, dataset: Dataset | str | Path | None = None,
                 out_dir: str | Path | None = None, images_dir: str | Path | None = None,
                 test_data: str | Path | None = None, test_ratio: float = 0.2) -> Path:
    """Write the report of the finished run in `run_folder` and return the HTML file's path.

    `dataset` is the data set the run was trained on, loaded or as a path; by default the
    path recorded in results.json. `out_dir` defaults to `run_folder/report`. `images_dir`
    is a folder of photographs with `labels.csv` (columns `file,label`, labels being class
    names) to predict. `test_data` and `test_ratio` are passed to `load_dataset` as
    `itsacat train` takes them. Every input is checked before anything is written, and a bad
    one raises `ReportError` naming it.

    Example: `write_report(".itsacat/runs/20260101-120000", images_dir="photos")`.
    """
    record = read_run(run_folder)
    dataset = load_run_dataset(record, dataset, test_data, test_ratio)
    photos = read_labeled_photos(images_dir, record.model.class_names) if images_dir else None
    out_dir = Path(out_dir) if out_dir else record.folder / REPORT_DIR

    names = record.model.class_names
    evaluations = {split: evaluate_split(record.model, getattr(dataset, split))
                   for split in SPLITS}
    mislabeled = mislabeled_items(dataset.test, evaluations["test"], names)
    predictions = photo_items(record.model, photos) if photos else None
    pngs = draw_figures(record, evaluations, mislabeled, predictions, dataset.test.m)
    sections = build_sections(record, dataset, evaluations, mislabeled, predictions, pngs,
                              images_dir)
    page = render_page(f"itsacat report: run {record.run.get('id', record.folder.name)}",
                       sections)

    out_dir.mkdir(parents=True, exist_ok=True)
    for name, png in pngs.items():
        _write_atomic(out_dir / f"{name}.png", png)
    path = out_dir / REPORT_FILE
    _write_atomic(path, page.encode("utf-8"))
    log.debug("report of run folder %s written to %s", record.folder, path)
    return path


def evaluate_split(model: Model, split: Split) -> SplitEvaluation:
    """Predict every image of `split` and compare with its labels."""
    X = split.X(model.spec.dtype)
    predicted = model.predict(X)
    return SplitEvaluation(evaluate_predictions(predicted, split.y), model.predict_proba(X),
                           predicted)


def draw_figures(record: RunRecord, evaluations: dict[str, SplitEvaluation],
                 mislabeled: list[PictureItem], photos: list[PictureItem] | None,
                 test_examples: int) -> dict[str, bytes]:
    """Draw every plot of the report and return each as PNG bytes, by file stem."""
    snapshots = record.insight["snapshots"] if record.insight else []
    names = record.model.class_names
    plots = {
        "cost": figures.cost_figure(record.costs, snapshots),
        "confusion": figures.confusion_figure(
            {split: evaluations[split].metrics for split in SPLITS}, names),
        "mislabeled": _gallery(mislabeled, names[1],
                               f"Mislabeled test images ({len(mislabeled)} of "
                               f"{test_examples})"),
    }
    if snapshots:
        plots["insight"] = figures.insight_figure(record.insight)
        plots["activations"] = figures.activations_figure(record.insight)
    if photos:
        plots["photos"] = _gallery(photos, names[1], "Labeled photographs")
    return {name: figures.png_bytes(figure) for name, figure in plots.items()}


def _gallery(items: list[PictureItem], positive: str, title: str):
    return figures.gallery_figure([item.picture for item in items],
                                  [_caption(item, positive) for item in items],
                                  [item.correct for item in items], title,
                                  columns=min(8, max(1, len(items))))


def mislabeled_items(split: Split, evaluation: SplitEvaluation, class_names: tuple[str, str]
                     ) -> list[PictureItem]:
    """Return the images of `split` that the model labels wrongly, in index order."""
    return [PictureItem(f"test #{index}", split.x[index],
                        class_names[evaluation.predicted[index]], class_names[split.y[index]],
                        float(evaluation.probabilities[index]))
            for index in evaluation.metrics.mislabeled]


def photo_items(model: Model, photos: list[LabeledPhoto]) -> list[PictureItem]:
    """Predict each labeled photograph."""
    X = photo_inputs(photos, model.spec.dtype)
    probabilities, predicted = model.predict_proba(X), model.predict(X)
    names = model.class_names
    return [PictureItem(photo.file, photo.image.pixels, names[predicted[index]],
                        names[photo.label], float(probabilities[index]), photo.note)
            for index, photo in enumerate(photos)]


def _caption(item: PictureItem, positive: str) -> str:
    return (f"{item.name}\npredicted {item.predicted}\ntrue {item.true}\n"
            f"p({positive}) = {item.probability:.3f}")


def build_sections(record: RunRecord, dataset: Dataset,
                   evaluations: dict[str, SplitEvaluation], mislabeled: list[PictureItem],
                   photos: list[PictureItem] | None, pngs: dict[str, bytes],
                   images_dir: str | Path | None) -> list[str]:
    """Return the HTML of every section, in page order."""
    names = record.model.class_names
    splits = {split: evaluations[split].metrics for split in SPLITS}
    costs = record.costs
    cost_text = (f"{len(costs)} epochs, final cost {costs[-1]:.6f}." if costs
                 else "results.json records no epoch costs.")
    insight_pngs = {name: pngs[name] for name in ("insight", "activations") if name in pngs}
    return [
        summary_section(run_facts(record, dataset), recorded_metric_warnings(record, splits)),
        plot_section("cost", "Cost", {"cost": pngs["cost"]}, cost_text),
        metrics_table(splits),
        plot_section("confusion", "Confusion matrix", {"confusion": pngs["confusion"]},
                     f"Rows are the true class, columns the predicted class; "
                     f"{names[1]} is the positive class."),
        gallery_section(mislabeled, names[1], dataset.test.m),
        insight_section(insight_pngs, record.insight, str(record.folder)),
        photos_section(photos, names[1],
                       str(images_dir) if images_dir else None),
    ]


def run_facts(record: RunRecord, dataset: Dataset) -> list[tuple[str, object]]:
    """Return the rows of the summary table."""
    run, spec = record.run, record.model.spec
    network = "-".join(str(n) for n in (record.model.n_x, *spec.neurons))
    return [
        ("run", run.get("id", "")), ("run folder", record.folder),
        ("started", record.results.get("Start", "")), ("ended", record.results.get("End", "")),
        ("network", f"{network} ({', '.join(spec.activations)})"),
        ("engine", run.get("engine", "")), ("strategy", spec.strategy), ("seed", spec.seed),
        ("learning rate", spec.learning_rate), ("minibatch size", spec.batch_size),
        ("epochs", f"{run.get('epochs_completed', len(record.costs))} of {spec.epochs}"
                   + (" (stopped early at the threshold)" if run.get("stopped_early") else "")),
        ("training time", f"{run.get('training_seconds', 0.0):.1f} s"),
        ("data set", f"{dataset.source} ({dataset.train.m} train, {dataset.test.m} test "
                     f"images)"),
        ("data set digest", dataset.digest),
        ("classes", f"0 = {record.model.class_names[0]}, 1 = {record.model.class_names[1]}"),
        ("code version", run.get("code_version", "")),
    ]


def recorded_metric_warnings(record: RunRecord, splits: dict[str, Metrics]) -> list[str]:
    """Compare the confusion counts in results.json with the ones computed again here."""
    recorded = record.results.get("metrics", {})
    warnings = []
    for split, metrics in splits.items():
        stored = recorded.get(split)
        if stored is None:
            continue
        if any(stored.get(field) != getattr(metrics, field) for field in CONFUSION_FIELDS):
            warnings.append(f"The {split} confusion counts in results.json "
                            f"({', '.join(f'{f} {stored.get(f)}' for f in CONFUSION_FIELDS)}) "
                            "differ from the ones this report computed; the model files "
                            "changed after the run finished.")
    return warnings


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_bytes(data)
    os.replace(temporary, path)
