"""Fixtures for the report tests: one real run on the shared data with its report, small runs
on generated data, and a parser that reads the report page back."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from itsacat.data import load_dataset
from itsacat.nn import parse_spec
from itsacat.report import write_report
from itsacat.training import create_engine, train
from tests.conftest import SMALL_SPEC, write_h5_dataset

REFERENCE_SPEC = {
    "epochs": 150, "layers": 4,
    "activations": {"layer1": "relu", "layer2": "relu", "layer3": "relu", "layer4": "sigmoid"},
    "neurons": {"layer1": 20, "layer2": 7, "layer3": 5, "layer4": 1},
    "learning_rate": 0.0075, "batch_size": 64, "threshold": 0.0, "seed": 3,
}


@dataclass
class Element:
    """One HTML element: its tag, its attributes and all the text inside it."""

    tag: str
    attrs: dict[str, str]
    section: str | None  # id of the enclosing <section>
    text: list[str] = field(default_factory=list)

    @property
    def content(self) -> str:
        return " ".join("".join(self.text).split())


class PageParser(HTMLParser):
    """Collect every element of a page with its text and enclosing section."""

    VOID = {"img", "br", "meta", "link", "input", "hr"}
    SEPARATING = {"br", "td", "th", "tr", "p", "div", "figcaption"}  # text breaks at these

    def __init__(self):
        super().__init__()
        self.elements: list[Element] = []
        self.open: list[Element] = []

    def handle_starttag(self, tag, attrs):
        attributes = {name: value or "" for name, value in attrs}
        if tag in self.SEPARATING:
            self.handle_data(" ")
        section = next((element.attrs.get("id") for element in reversed(self.open)
                        if element.tag == "section"), None)
        if tag == "section":
            section = attributes.get("id")
        element = Element(tag, attributes, section)
        self.elements.append(element)
        if tag not in self.VOID:
            self.open.append(element)

    def handle_endtag(self, tag):
        for index in range(len(self.open) - 1, -1, -1):
            if self.open[index].tag == tag:
                del self.open[index:]
                return

    def handle_data(self, data):
        for element in self.open:
            element.text.append(data)


@dataclass
class Page:
    """A parsed report page."""

    path: Path
    elements: list[Element]

    def find(self, tag: str | None = None, section: str | None = None, **attrs: str
             ) -> list[Element]:
        """Return the elements with `tag`, in `section`, whose attributes equal `attrs`
        (underscores in names stand for dashes)."""
        wanted = {name.replace("_", "-"): value for name, value in attrs.items()}
        return [element for element in self.elements
                if (tag is None or element.tag == tag)
                and (section is None or element.section == section)
                and all(element.attrs.get(name) == value for name, value in wanted.items())]

    def metric(self, name: str, split: str) -> Element:
        (cell,) = self.find("td", data_metric=name, data_split=split)
        return cell


def parse_page(path: Path) -> Page:
    parser = PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    return Page(path, parser.elements)


@dataclass
class RealRun:
    folder: Path
    report: Path
    page: Page
    dataset_path: Path
    images: Path


@pytest.fixture(scope="package")
def real_run(tmp_path_factory, shared_data: Path) -> RealRun:
    """One run of the reference network on the real data, with its report and photographs."""
    dataset_path = shared_data / "datasets" / "datasets.h5"
    folder = tmp_path_factory.mktemp("real") / "run"
    train(load_dataset(dataset_path), parse_spec(REFERENCE_SPEC, "reference spec"),
          create_engine("vectorized"), folder)
    images = shared_data / "images"
    report = write_report(folder, images_dir=images)
    return RealRun(folder, report, parse_page(report), dataset_path, images)


@pytest.fixture(scope="package")
def small_run(tmp_path_factory) -> tuple[Path, Path]:
    """A finished run on generated data without a report: (run folder, data set path)."""
    root = tmp_path_factory.mktemp("small")
    dataset_path = write_h5_dataset(root / "small.h5")
    folder = root / "run"
    train(load_dataset(dataset_path), parse_spec(SMALL_SPEC, "small spec"),
          create_engine("vectorized"), folder)
    return folder, dataset_path


def write_photos(folder: Path, rows: list[tuple[str, str]], create: bool = True) -> Path:
    """Write a labeled photographs folder: one flat-coloured PNG per row and labels.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["file,label"]
    for index, (file, label) in enumerate(rows):
        if create:
            color = (40 * index % 256, 200, 90)
            Image.fromarray(np.full((80, 100, 3), color, dtype=np.uint8)).save(folder / file)
        lines.append(f"{file},{label}")
    (folder / "labels.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder
