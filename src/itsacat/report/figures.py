"""The report's plots, drawn with matplotlib's object API on the Agg canvas.

Figures are built from `matplotlib.figure.Figure` instead of pyplot, so no backend is chosen
globally, no display is needed and no figure outlives the function that saved it.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from itsacat.report.metrics import Metrics

DPI = 110
WRONG_COLOR = "#c62828"
RIGHT_COLOR = "#2e7d32"


def png_bytes(figure: Figure) -> bytes:
    """Render `figure` to PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def cost_figure(costs: list[float], snapshots: list[dict[str, Any]]) -> Figure:
    """Plot the cost of every epoch and, where insight was sampled, the full-batch cost of
    the weights at the end of that epoch."""
    figure = Figure(layout="constrained", figsize=(8, 3.6))
    axes = figure.subplots()
    axes.plot(np.arange(len(costs)), costs, color="tab:blue", label="epoch cost")
    if snapshots:
        axes.plot([item["epoch"] for item in snapshots], [item["cost"] for item in snapshots],
                  "o", markersize=3, color="tab:orange",
                  label="cost on the whole training set after the epoch")
    if costs and min(costs) > 0 and max(costs) > 10 * min(costs):
        axes.set_yscale("log")  # once the cost spans a decade, late epochs need the detail
    axes.set_xlabel("epoch")
    axes.set_ylabel("cross-entropy cost")
    axes.set_title("Cost per epoch")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="upper right")
    return figure


def confusion_figure(splits: dict[str, Metrics], class_names: tuple[str, str]) -> Figure:
    """Draw one labelled 2×2 confusion matrix per split: true class by row, predicted class by
    column, each cell with its count and its share of the split."""
    figure = Figure(layout="constrained", figsize=(4.2 * len(splits), 3.8))
    for axes, (split, metrics) in zip(np.atleast_1d(figure.subplots(1, len(splits))),
                                      splits.items(), strict=True):
        counts = np.array([[metrics.tn, metrics.fp], [metrics.fn, metrics.tp]])
        axes.imshow(counts, cmap="Blues", vmin=0, vmax=max(1, int(counts.max())))
        for (row, column), count in np.ndenumerate(counts):
            share = count / max(1, metrics.examples)
            color = "white" if count > counts.max() / 2 else "black"
            axes.text(column, row, f"{count}\n{share:.1%}", ha="center", va="center",
                      color=color, fontsize=12)
        axes.set_xticks([0, 1], [f"predicted\n{name}" for name in class_names])
        axes.set_yticks([0, 1], [f"true\n{name}" for name in class_names])
        axes.set_title(f"{split} ({metrics.examples} images)")
    figure.suptitle("Confusion matrix")
    return figure


def gallery_figure(pictures: list[np.ndarray], captions: list[str], correct: list[bool],
                   title: str, columns: int = 8) -> Figure:
    """Lay out 64×64 pictures in a grid with a caption under each, red when the prediction is
    wrong and green when it is right."""
    rows = max(1, -(-len(pictures) // columns))
    figure = Figure(layout="constrained", figsize=(1.6 * columns, 1.9 * rows + 0.4))
    grid = np.atleast_1d(figure.subplots(rows, columns)).reshape(-1)
    for axes in grid:
        axes.axis("off")
    for axes, picture, caption, right in zip(grid, pictures, captions, correct, strict=False):
        axes.imshow(picture, interpolation="nearest")
        axes.set_title(caption, fontsize=7, color=RIGHT_COLOR if right else WRONG_COLOR)
    figure.suptitle(title)
    return figure


def insight_figure(insight: dict[str, Any]) -> Figure:
    """Plot, per layer over the sampled epochs, the weight norm, the full-batch gradient norm
    and the fraction of rectifier neurons that never fire."""
    snapshots = insight["snapshots"]
    epochs = [item["epoch"] for item in snapshots]
    figure = Figure(layout="constrained", figsize=(12, 3.6))
    weights, gradients, dead = figure.subplots(1, 3)
    for index, layer in enumerate(snapshots[0]["layers"]):
        label = f"layer {layer['layer']} ({layer['activation']}, {layer['neurons']})"
        series = [item["layers"][index] for item in snapshots]
        weights.plot(epochs, [value["weight_norm"] for value in series], label=label)
        gradients.plot(epochs, [value["gradient_norm"] for value in series], label=label)
        if layer["dead_fraction"] is not None:
            dead.plot(epochs, [value["dead_fraction"] for value in series], label=label)
    weights.set_title("weight norm ‖W[l]‖")
    gradients.set_title("gradient norm ‖dW[l]‖ (whole training set)")
    gradients.set_yscale("log")
    dead.set_title("rectifier neurons that never fire")
    dead.set_ylim(-0.03, 1.03)
    for axes in (weights, gradients, dead):
        axes.set_xlabel("epoch")
        axes.grid(True, alpha=0.3)
    weights.legend(fontsize=7)
    return figure


def activations_figure(insight: dict[str, Any]) -> Figure:
    """Plot, per layer, the distribution of A[l] over the sampled epochs: the median with the
    25–75 and 5–95 percentile bands, and the maximum."""
    snapshots = insight["snapshots"]
    percentiles = list(insight["percentiles"])
    epochs = [item["epoch"] for item in snapshots]
    layers = snapshots[0]["layers"]
    figure = Figure(layout="constrained", figsize=(3.2 * len(layers), 3.2))
    for index, axes in enumerate(np.atleast_1d(figure.subplots(1, len(layers)))):
        values = np.array([item["layers"][index]["activation_percentiles"]
                           for item in snapshots])  # (snapshots, percentiles)
        column = {p: values[:, percentiles.index(p)] for p in percentiles}
        axes.fill_between(epochs, column[5], column[95], alpha=0.2, color="tab:blue",
                          label="5–95th percentile")
        axes.fill_between(epochs, column[25], column[75], alpha=0.4, color="tab:blue",
                          label="25–75th percentile")
        axes.plot(epochs, column[50], color="tab:blue", label="median")
        axes.plot(epochs, column[100], color="tab:gray", linestyle="--", label="maximum")
        layer = layers[index]
        axes.set_title(f"A[{layer['layer']}] ({layer['activation']})")
        axes.set_xlabel("epoch")
        axes.grid(True, alpha=0.3)
    figure.axes[0].legend(fontsize=7)
    figure.suptitle("Activation distribution per layer")
    return figure
