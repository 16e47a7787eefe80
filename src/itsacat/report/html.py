"""The report page: one self-contained HTML file whose pictures are base64 data URIs.

Every number the page shows is also in a `data-value` attribute with full precision. Every
section has a fixed `id` (`summary`, `cost`, `metrics`, `confusion`, `mislabeled`, `insight`,
`photos`). Scripts and tests read the page through both.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from html import escape
from importlib import resources
from string import Template
from typing import Any

import numpy as np
from PIL import Image

from itsacat import __version__
from itsacat.report.metrics import Metrics

# Rows of the metrics table: the title shown and the `Metrics` attribute.
METRIC_ROWS = (("accuracy", "accuracy"), ("error", "error"), ("sensitivity", "sensitivity"),
               ("specificity", "specificity"), ("false positive rate", "false_positive_rate"),
               ("precision", "precision"), ("F1", "f1"))
CONFUSION_ROWS = (("true negatives", "tn"), ("false positives", "fp"),
                  ("false negatives", "fn"), ("true positives", "tp"))


@dataclass(frozen=True)
class PictureItem:
    """One picture with its prediction, for the mislabeled gallery or the photographs table."""

    name: str  # "test #12" or a file name
    picture: np.ndarray  # (64, 64, 3) uint8, what the model saw
    predicted: str
    true: str
    probability: float  # probability of the positive class
    note: str = ""

    @property
    def correct(self) -> bool:
        return self.predicted == self.true


def png_data_uri(png: bytes) -> str:
    """Return PNG bytes as a `data:` URI that a browser shows without a server."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def picture_png(pixels: np.ndarray) -> bytes:
    """Encode 8-bit RGB pixels `(h, w, 3)` as PNG."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def render_page(title: str, sections: list[str]) -> str:
    """Fill the page template with `title` and the sections' HTML."""
    template = Template(resources.files("itsacat.report").joinpath("template.html")
                        .read_text(encoding="utf-8"))
    body = f"<h1>{escape(title)}</h1>\n" + "\n".join(sections)
    return template.substitute(title=escape(title), version=escape(__version__), body=body)


def summary_section(facts: list[tuple[str, Any]], warnings: list[str]) -> str:
    """List the run's facts (id, engine, network, data set…) and any warning about them."""
    rows = "".join(f"<tr><th>{escape(name)}</th><td>{escape(str(value))}</td></tr>\n"
                   for name, value in facts)
    notes = "".join(f'<p class="warning">{escape(text)}</p>\n' for text in warnings)
    return f'<section id="summary">\n{notes}<table>\n{rows}</table>\n</section>'


def plot_section(section_id: str, heading: str, pngs: dict[str, bytes], text: str = "",
                 extra: str = "") -> str:
    """Build a section with a heading, an optional paragraph, one embedded plot per PNG and
    then the `extra` HTML."""
    images = "".join(f'<img class="plot" data-figure="{escape(name)}" alt="{escape(name)}" '
                     f'src="{png_data_uri(png)}">\n' for name, png in pngs.items())
    paragraph = f"<p>{escape(text)}</p>\n" if text else ""
    return (f'<section id="{section_id}">\n<h2>{escape(heading)}</h2>\n{paragraph}'
            f"{images}{extra}</section>")


def metrics_table(splits: dict[str, Metrics]) -> str:
    """Build the table of rates and confusion counts, one column per split."""
    header = "".join(f"<th>{escape(split)}</th>" for split in splits)
    rows = []
    for title, attribute in METRIC_ROWS:
        cells = "".join(_number_cell(getattr(metrics, attribute), attribute, split, ".4f")
                        for split, metrics in splits.items())
        rows.append(f"<tr><th>{escape(title)}</th>{cells}</tr>")
    for title, attribute in CONFUSION_ROWS:
        cells = "".join(_number_cell(getattr(metrics, attribute), attribute, split, "d")
                        for split, metrics in splits.items())
        rows.append(f"<tr><th>{escape(title)}</th>{cells}</tr>")
    examples = "".join(_number_cell(metrics.examples, "examples", split, "d")
                       for split, metrics in splits.items())
    rows.append(f"<tr><th>images</th>{examples}</tr>")
    body = "\n".join(rows)
    return (f'<section id="metrics">\n<h2>Metrics</h2>\n<table class="metrics">\n'
            f"<tr><th></th>{header}</tr>\n{body}\n</table>\n</section>")


def _number_cell(value: float | int, metric: str, split: str, spec: str) -> str:
    return (f'<td class="number" data-metric="{metric}" data-split="{escape(split)}" '
            f'data-value="{value!r}">{value:{spec}}</td>')


def gallery_section(items: list[PictureItem], positive: str, examples: int) -> str:
    """Build the gallery of mislabeled test images, each with its predicted and true class
    and its probability."""
    figures = "".join(_gallery_figure(item, positive) for item in items)
    heading = f"Mislabeled test images ({len(items)} of {examples})"
    content = (f'<div class="gallery">\n{figures}</div>\n' if items
               else "<p>The model labels every test image correctly.</p>\n")
    return f'<section id="mislabeled">\n<h2>{escape(heading)}</h2>\n{content}</section>'


def _gallery_figure(item: PictureItem, positive: str) -> str:
    return (f'<figure class="picture" {_item_attributes(item)}>'
            f'<img class="picture" alt="{escape(item.name)}" '
            f'src="{png_data_uri(picture_png(item.picture))}">'
            f"<figcaption>{escape(item.name)}<br>"
            f'predicted <b class="wrong">{escape(item.predicted)}</b>, '
            f"true {escape(item.true)}<br>"
            f"p({escape(positive)}) = {item.probability:.4f}</figcaption></figure>\n")


def _item_attributes(item: PictureItem) -> str:
    return (f'data-name="{escape(item.name)}" data-predicted="{escape(item.predicted)}" '
            f'data-true="{escape(item.true)}" data-probability="{item.probability!r}"')


def insight_section(pngs: dict[str, bytes], insight: dict[str, Any] | None,
                    folder: str) -> str:
    """Build the section of per-layer plots over the epochs and a table of the last
    snapshot."""
    if insight is None or not insight.get("snapshots"):
        return ('<section id="insight">\n<h2>Layers over the epochs</h2>\n'
                f"<p>Run folder {escape(folder)} has no insight.json: it was trained before "
                "itsacat recorded per-layer insight, or outside itsacat.</p>\n</section>")
    last = insight["snapshots"][-1]
    rows = []
    for layer in last["layers"]:
        number = str(layer["layer"])
        percentiles = dict(zip(insight["percentiles"], layer["activation_percentiles"],
                               strict=True))
        dead = layer["dead_fraction"]
        dead_cell = ("<td>not a rectifier</td>" if dead is None
                     else _number_cell(dead, "dead_fraction", number, ".2%"))
        rows.append(f"<tr><td>{number}</td><td>{escape(layer['activation'])}</td>"
                    f"{_number_cell(layer['neurons'], 'neurons', number, 'd')}"
                    f"{_number_cell(layer['weight_norm'], 'weight_norm', number, '.4f')}"
                    f"{_number_cell(layer['gradient_norm'], 'gradient_norm', number, '.3e')}"
                    f"{_number_cell(percentiles[50], 'activation_median', number, '.4f')}"
                    f"{_number_cell(percentiles[95], 'activation_p95', number, '.4f')}"
                    f"{dead_cell}</tr>")
    table = ('<table class="layers">\n<tr><th>layer</th><th>activation</th><th>neurons</th>'
             "<th>‖W[l]‖</th><th>‖dW[l]‖</th><th>median A[l]</th><th>95th percentile A[l]</th>"
             "<th>neurons that never fire</th></tr>\n" + "\n".join(rows) + "\n</table>\n")
    text = (f"Measured on the whole training set at {len(insight['snapshots'])} sampled "
            f"epochs. The table shows epoch {last['epoch']}.")
    return plot_section("insight", "Layers over the epochs", pngs, text, table)


def photos_section(items: list[PictureItem] | None, positive: str, folder: str | None
                   ) -> str:
    """Build the table of predictions on the labeled photographs, each shown at the 64×64
    size of the model's input."""
    heading = "Labeled photographs"
    if items is None:
        return (f'<section id="photos">\n<h2>{heading}</h2>\n<p class="muted">No folder of '
                "labeled photographs was given; rebuild the report with itsacat report RUN "
                "--images DIR, where DIR holds labels.csv (file,label).</p>\n</section>")
    right = sum(item.correct for item in items)
    rows = "".join(
        f'<tr class="photo" {_item_attributes(item)}>'
        f'<td><img class="picture" alt="{escape(item.name)}" '
        f'src="{png_data_uri(picture_png(item.picture))}"></td>'
        f"<td>{escape(item.name)}</td><td>{escape(item.true)}</td>"
        f'<td class="{"right" if item.correct else "wrong"}">{escape(item.predicted)}</td>'
        f'<td class="number">{item.probability:.4f}</td><td>{escape(item.note)}</td></tr>\n'
        for item in items)
    table = (f"<table>\n<tr><th>picture (64×64)</th><th>file</th><th>true</th>"
             f"<th>predicted</th><th>p({escape(positive)})</th><th>note</th></tr>\n"
             f"{rows}</table>\n")
    text = f"{right} of {len(items)} photographs in {folder} predicted right."
    return plot_section("photos", heading, {}, text, table)
