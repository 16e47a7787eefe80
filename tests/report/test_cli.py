"""`itsacat train` writes the report and prints its path; `itsacat report` rebuilds it."""

import json
import shutil
import subprocess
import sys

from itsacat.cli import main
from itsacat.data import load_dataset
from itsacat.nn import parse_spec
from itsacat.report import write_report
from itsacat.settings import Settings
from itsacat.training import create_engine, train
from tests.conftest import SMALL_SPEC
from tests.report.conftest import parse_page, write_photos


def itsacat(*args, home):
    """Run the real command line in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "itsacat", "--home", str(home),
                           *map(str, args)], capture_output=True, text=True, timeout=300)


def test_train_writes_report_and_prints_its_path(tmp_path, small_dataset_path):
    spec = tmp_path / "parameters.json"
    spec.write_text(json.dumps(SMALL_SPEC))
    out = tmp_path / "run"

    result = itsacat("train", "--data", small_dataset_path, "--params", spec, "--out", out,
                     home=tmp_path / "home")

    assert result.returncode == 0, result.stderr
    report = out / "report" / "report.html"
    assert result.stdout.splitlines()[-1] == f"report: {report}"
    page = parse_page(report)
    assert [section.attrs["id"] for section in page.find("section")] == [
        "summary", "cost", "metrics", "confusion", "mislabeled", "insight", "photos"]
    results = json.loads((out / "results.json").read_text())
    assert page.metric("accuracy", "test").attrs["data-value"] == repr(
        results["metrics"]["test"]["accuracy"])


def test_train_no_report_skips_report(tmp_path, small_dataset_path):
    spec = tmp_path / "parameters.json"
    spec.write_text(json.dumps(SMALL_SPEC))
    out = tmp_path / "run"

    result = itsacat("train", "--data", small_dataset_path, "--params", spec, "--out", out,
                     "--epochs", "3", "--json", "--no-report", home=tmp_path / "home")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["report"] is None
    assert (out / "results.json").exists()
    assert not (out / "report").exists()


def test_report_command_writes_into_out_with_photos(small_run, tmp_path):
    folder, dataset_path = small_run
    photos = write_photos(tmp_path / "photos", [("a.png", "cat"), ("b.png", "non-cat")])
    out = tmp_path / "out"

    result = itsacat("report", folder, "--images", photos, "--out", out, "--data",
                     dataset_path, "--json", home=tmp_path / "home")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"run_folder": str(folder),
                                         "report": str(out / "report.html")}
    rows = parse_page(out / "report.html").find("tr", section="photos", **{"class": "photo"})
    assert [(row.attrs["data-name"], row.attrs["data-true"]) for row in rows] == [
        ("a.png", "cat"), ("b.png", "non-cat")]
    assert sorted(path.name for path in out.iterdir()) == [
        "activations.png", "confusion.png", "cost.png", "insight.png", "mislabeled.png",
        "photos.png", "report.html"]


def test_report_command_resolves_registry_run_id(tmp_path, small_dataset_path, capsys):
    from itsacat.registry import RegistryRecorder, open_registry

    registry = open_registry(Settings.from_env(tmp_path / "home"))
    result = train(load_dataset(small_dataset_path), parse_spec(SMALL_SPEC, "small spec"),
                   create_engine("vectorized"), tmp_path / "run",
                   observers=[RegistryRecorder(registry)])

    status = main(["--home", str(tmp_path / "home"), "report", result.run_id[:8], "--out",
                   str(tmp_path / "out")])

    assert status == 0
    assert capsys.readouterr().out == f"report: {tmp_path / 'out' / 'report.html'}\n"
    (title,) = parse_page(tmp_path / "out" / "report.html").find("h1")
    assert title.content == f"itsacat report: run {result.run_id}"


def test_report_command_unknown_run_id_names_it(tmp_path, capsys):
    status = main(["--home", str(tmp_path / "home"), "report", "0123abcd"])

    assert status == 2
    # Opening a new registry logs its migration first; the error is the last line.
    assert capsys.readouterr().err.splitlines()[-1] == (
        "itsacat report: error: run '0123abcd' not found: it is neither a run folder nor the "
        "id of a run in the registry; pass the run folder or an id from itsacat runs list")


def test_report_reference_run_folder_needs_only_data(small_run, tmp_path):
    """A folder from the reference design: results.json with epoch costs only, no insight."""
    folder, dataset_path = small_run
    reference = tmp_path / "reference"
    shutil.copytree(folder, reference, ignore=shutil.ignore_patterns("insight.json"))
    results = json.loads((reference / "results.json").read_text())
    (reference / "results.json").write_text(json.dumps(
        {key: value for key, value in results.items() if key not in ("run", "metrics")}))

    report = write_report(reference, dataset_path)

    page = parse_page(report)
    (insight,) = page.find("p", section="insight")
    assert insight.content == (f"Run folder {reference} has no insight.json: it was trained "
                               "before itsacat recorded per-layer insight, or outside itsacat.")
    assert page.find("img", section="insight") == []
    assert page.metric("examples", "test").content == "4"
    assert sorted(path.name for path in report.parent.iterdir()) == [
        "confusion.png", "cost.png", "mislabeled.png", "report.html"]
