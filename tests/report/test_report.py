"""The report of a real run: every part present, and every number equal to an evaluation
computed here from params.h5 and the data set, without itsacat's model or metrics code."""

import base64
import csv
import io
import json

import h5py
import numpy as np
import pytest
from PIL import Image

from itsacat.data import load_image_file
from itsacat.nn.insight import INSIGHT_FILE

SECTIONS = ["summary", "cost", "metrics", "confusion", "mislabeled", "insight", "photos"]
FIGURES = ["cost", "confusion", "mislabeled", "insight", "activations", "photos"]


def forward_by_hand(folder, X):
    """Return the probability of class 1 for columns X, from params.h5 and parameters.json."""
    spec = json.loads((folder / "parameters.json").read_text())
    activations = [spec["activations"][f"layer{l}"] for l in range(1, spec["layers"] + 1)]
    A = X
    with h5py.File(folder / "params.h5") as h5:
        for l, activation in enumerate(activations, start=1):
            Z = np.asarray(h5[f"W{l}"]) @ A + np.asarray(h5[f"b{l}"])
            A = np.maximum(Z, 0) if activation == "relu" else 1 / (1 + np.exp(-Z))
    return A[0]


def split_by_hand(dataset_path, split):
    """Return (pictures, labels, columns) of one split, read straight from the h5 file."""
    with h5py.File(dataset_path) as h5:
        x = np.asarray(h5[f"{split}_set_x"])
        y = np.asarray(h5[f"{split}_set_y"]).reshape(-1)
    return x, y, x.reshape(len(x), -1).T / 255.0


def metrics_by_hand(probabilities, labels):
    predicted = (probabilities > 0.5).astype(int)
    tp = int(np.sum((predicted == 1) & (labels == 1)))
    tn = int(np.sum((predicted == 0) & (labels == 0)))
    fp = int(np.sum((predicted == 1) & (labels == 0)))
    fn = int(np.sum((predicted == 0) & (labels == 1)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "accuracy": (tp + tn) / len(labels), "error": (fp + fn) / len(labels),
        "sensitivity": recall, "specificity": tn / (tn + fp) if tn + fp else 0.0,
        "false_positive_rate": fp / (fp + tn) if fp + tn else 0.0, "precision": precision,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "tn": tn, "fp": fp, "fn": fn, "tp": tp, "examples": len(labels),
    }


def decode_data_uri(uri):
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    return Image.open(io.BytesIO(base64.b64decode(uri[len(prefix):])))


def test_report_has_every_section_with_its_plots(real_run):
    page = real_run.page
    assert [element.attrs["id"] for element in page.find("section")] == SECTIONS
    plots = {element.attrs["data-figure"]: element for element in page.find("img")
             if "data-figure" in element.attrs}
    assert sorted(plots) == ["activations", "confusion", "cost", "insight"]
    assert plots["cost"].section == "cost"
    assert plots["confusion"].section == "confusion"
    assert plots["insight"].section == plots["activations"].section == "insight"
    for element in plots.values():
        image = decode_data_uri(element.attrs["src"])
        assert image.format == "PNG"
        assert image.width > 400
        assert image.height > 250


def test_report_is_self_contained(real_run):
    page = real_run.page
    images = page.find("img")
    assert len(images) > 10
    assert all(element.attrs["src"].startswith("data:image/png;base64,") for element in images)
    assert page.find("script") == []
    assert page.find("link") == []


def test_report_png_figures_written_beside_html(real_run):
    folder = real_run.report.parent
    assert real_run.report.name == "report.html"
    assert real_run.report.parent == real_run.folder / "report"
    for name in FIGURES:
        with Image.open(folder / f"{name}.png") as image:
            assert image.format == "PNG"
            assert image.width > 300


@pytest.mark.parametrize("split", ["train", "test"])
def test_report_metrics_match_independent_evaluation(real_run, split):
    _, labels, X = split_by_hand(real_run.dataset_path, split)
    expected = metrics_by_hand(forward_by_hand(real_run.folder, X), labels)

    for name in ["accuracy", "error", "sensitivity", "specificity", "false_positive_rate",
                 "precision", "f1"]:
        cell = real_run.page.metric(name, split)
        assert cell.section == "metrics"
        assert cell.content == f"{expected[name]:.4f}", name
        assert float(cell.attrs["data-value"]) == pytest.approx(expected[name], abs=1e-12)
    for name in ["tn", "fp", "fn", "tp", "examples"]:
        assert real_run.page.metric(name, split).content == str(expected[name]), name


def test_report_mislabeled_gallery_matches_independent_predictions(real_run):
    x, labels, X = split_by_hand(real_run.dataset_path, "test")
    probabilities = forward_by_hand(real_run.folder, X)
    wrong = np.flatnonzero((probabilities > 0.5).astype(int) != labels)
    names = ["non-cat", "cat"]

    figures = real_run.page.find("figure", section="mislabeled")
    assert len(wrong) > 0
    assert [element.attrs["data-name"] for element in figures] == [f"test #{i}" for i in wrong]
    (heading,) = real_run.page.find("h2", section="mislabeled")
    assert heading.content == f"Mislabeled test images ({len(wrong)} of 50)"
    for element, index in zip(figures, wrong, strict=True):
        predicted = names[int(probabilities[index] > 0.5)]
        assert element.attrs["data-predicted"] == predicted
        assert element.attrs["data-true"] == names[labels[index]]
        assert float(element.attrs["data-probability"]) == pytest.approx(probabilities[index],
                                                                         abs=1e-12)
        assert element.content == (f"test #{index} predicted {predicted}, true "
                                   f"{names[labels[index]]} p(cat) = "
                                   f"{probabilities[index]:.4f}")
        (image,) = [child for child in real_run.page.find("img", section="mislabeled")
                    if child.attrs["alt"] == f"test #{index}"]
        assert np.array_equal(np.asarray(decode_data_uri(image.attrs["src"])), x[index])


def test_report_photos_match_labels_and_predictions(real_run):
    with (real_run.images / "labels.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    pictures = [load_image_file(real_run.images / row["file"]).pixels for row in rows]
    X = np.stack(pictures).reshape(len(rows), -1).T / 255.0
    probabilities = forward_by_hand(real_run.folder, X)

    photos = real_run.page.find("tr", section="photos", **{"class": "photo"})
    assert [element.attrs["data-name"] for element in photos] == [row["file"] for row in rows]
    for element, row, probability in zip(photos, rows, probabilities, strict=True):
        assert element.attrs["data-true"] == row["label"]
        assert element.attrs["data-predicted"] == ("cat" if probability > 0.5 else "non-cat")
        assert float(element.attrs["data-probability"]) == pytest.approx(probability,
                                                                         abs=1e-12)
        assert f"{probability:.4f}" in element.content
        assert row["note"] in element.content
    right = sum((p > 0.5) == (row["label"] == "cat") for p, row in
                zip(probabilities, rows, strict=True))
    (paragraph,) = real_run.page.find("p", section="photos")
    assert paragraph.content == (f"{right} of {len(rows)} photographs in {real_run.images} "
                                 "predicted right.")


def test_report_insight_table_matches_final_weights(real_run):
    insight = json.loads((real_run.folder / INSIGHT_FILE).read_text())
    assert insight["snapshots"][-1]["epoch"] == 149
    with h5py.File(real_run.folder / "params.h5") as h5:
        for l in range(1, 5):
            cell, = real_run.page.find("td", data_metric="weight_norm", data_split=str(l))
            expected = np.linalg.norm(np.asarray(h5[f"W{l}"]))
            assert cell.section == "insight"
            assert float(cell.attrs["data-value"]) == pytest.approx(expected, rel=1e-12)
            assert cell.content == f"{expected:.4f}"


def test_report_summary_shows_run_and_final_cost(real_run):
    results = json.loads((real_run.folder / "results.json").read_text())
    page = real_run.page
    (title,) = page.find("h1")
    assert title.content == f"itsacat report: run {results['run']['id']}"
    (cost_text,) = page.find("p", section="cost")
    assert cost_text.content == f"150 epochs, final cost {results['epoch149']['cost']:.6f}."
    summary = {row.content for row in page.find("tr", section="summary")}
    assert f"data set digest {results['run']['dataset_digest']}" in summary
    assert "network 12288-20-7-5-1 (relu, relu, relu, sigmoid)" in summary
