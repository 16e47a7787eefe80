"""Every bad input of `itsacat report` gets one line that names it, and writes nothing."""

import json
import shutil

import pytest

from itsacat.cli import main
from itsacat.data import load_dataset
from itsacat.report import ReportError, write_report
from tests.conftest import write_h5_dataset
from tests.report.conftest import write_photos


def report_error(capsys, *args):
    """Run `itsacat report` in this process; return its exit status and its stderr lines."""
    status = main(["report", *map(str, args)])
    return status, capsys.readouterr().err.splitlines()


def test_report_missing_run_folder_names_it(tmp_path, capsys):
    folder = tmp_path / "runs" / "nope"
    status, lines = report_error(capsys, folder)
    assert status == 2
    assert lines == [f"itsacat report: error: run folder {folder} not found; pass the folder "
                     "of a finished run, the one that holds results.json"]


def test_report_folder_without_results_names_it(tmp_path, capsys):
    folder = tmp_path / "empty"
    folder.mkdir()
    status, lines = report_error(capsys, folder)
    assert status == 2
    assert lines == [f"itsacat report: error: run folder {folder} has no results.json; it is "
                     "not the folder of a finished run"]


def test_report_unfinished_run_suggests_resume(tmp_path, capsys):
    folder = tmp_path / "unfinished"
    folder.mkdir()
    (folder / "checkpoint.npz").write_bytes(b"")
    status, lines = report_error(capsys, folder)
    assert status == 2
    assert lines == [f"itsacat report: error: run folder {folder} has no results.json; the run "
                     f"has not finished, so resume it with itsacat train --resume {folder}"]


def test_report_damaged_results_names_file(small_run, tmp_path, capsys):
    folder = tmp_path / "damaged"
    shutil.copytree(small_run[0], folder)
    (folder / "results.json").write_text("{\"Start\": ")
    status, lines = report_error(capsys, folder)
    assert status == 2
    assert lines == [f"itsacat report: error: run results {folder / 'results.json'} cannot be "
                     "read (Expecting value: line 1 column 11 (char 10)); it is damaged, so "
                     "train the run again"]


def test_report_other_dataset_names_both_digests(small_run, tmp_path, capsys):
    folder, trained_on = small_run
    other = write_h5_dataset(tmp_path / "other.h5", seed=7)
    digest = json.loads((folder / "results.json").read_text())["run"]["dataset_digest"]

    status, lines = report_error(capsys, folder, "--data", other, "--out", tmp_path / "out")

    other_digest = load_dataset(other).digest
    assert status == 2
    assert lines == [f"itsacat report: error: data set {other} has digest {other_digest[:12]}, "
                     f"but run folder {folder} was trained on {trained_on} with digest "
                     f"{digest[:12]}; pass --data with the data set the run was trained on"]
    assert not (tmp_path / "out").exists()


def test_report_moved_dataset_names_recorded_path(small_run, tmp_path, capsys):
    folder = tmp_path / "moved"
    shutil.copytree(small_run[0], folder)
    results = json.loads((folder / "results.json").read_text())
    results["run"]["dataset"] = str(tmp_path / "gone.h5")
    (folder / "results.json").write_text(json.dumps(results))

    status, lines = report_error(capsys, folder)
    assert status == 2
    assert lines == [f"itsacat report: error: data set {tmp_path / 'gone.h5'}, recorded by run "
                     f"folder {folder}, not found; pass --data with its current path"]


def test_report_photos_folder_missing_names_it(small_run, tmp_path, capsys):
    status, lines = report_error(capsys, small_run[0], "--images", tmp_path / "photos")
    assert status == 2
    assert lines == [f"itsacat report: error: labeled photographs folder {tmp_path / 'photos'} "
                     "not found; pass --images with a folder that holds labels.csv"]


def test_report_labels_csv_missing_names_it(small_run, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    status, lines = report_error(capsys, small_run[0], "--images", photos)
    assert status == 2
    assert lines == [f"itsacat report: error: labeled photographs {photos / 'labels.csv'} not "
                     "found; write it with the header file,label and one row per picture"]


def test_report_labels_csv_without_label_column_names_it(small_run, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "labels.csv").write_text("file,class\na.png,cat\n")
    status, lines = report_error(capsys, small_run[0], "--images", photos)
    assert status == 2
    assert lines == [f"itsacat report: error: labeled photographs {photos / 'labels.csv'}: the "
                     "header has no column label; expected the header file,label"]


def test_report_unknown_label_names_line_and_label(small_run, tmp_path, capsys):
    photos = write_photos(tmp_path / "photos", [("a.png", "cat"), ("b.png", "dog")])
    status, lines = report_error(capsys, small_run[0], "--images", photos)
    assert status == 2
    assert lines == [f"itsacat report: error: labeled photographs {photos / 'labels.csv'} "
                     "line 3: label 'dog' is not a class of the model; expected 'non-cat' or "
                     "'cat'"]


def test_report_missing_picture_names_line_and_file(small_run, tmp_path, capsys):
    photos = write_photos(tmp_path / "photos", [("a.png", "cat")])
    with (photos / "labels.csv").open("a") as handle:
        handle.write("missing.jpg,non-cat\n")
    status, lines = report_error(capsys, small_run[0], "--images", photos)
    assert status == 2
    assert lines == [f"itsacat report: error: labeled photographs {photos / 'labels.csv'} "
                     f"line 3: picture 'missing.jpg' not found in {photos}"]


def test_report_picture_outside_folder_is_rejected(small_run, tmp_path, capsys):
    photos = write_photos(tmp_path / "photos", [("../outside.png", "cat")])
    status, lines = report_error(capsys, small_run[0], "--images", photos)
    assert status == 2
    assert lines == [f"itsacat report: error: labeled photographs {photos / 'labels.csv'} "
                     f"line 2: file '../outside.png' must name a picture inside {photos}"]


def test_report_undecodable_picture_names_it(small_run, tmp_path, capsys):
    photos = write_photos(tmp_path / "photos", [("a.png", "cat")])
    (photos / "a.png").write_bytes(b"not a picture")
    status, lines = report_error(capsys, small_run[0], "--images", photos)
    assert status == 2
    assert lines == [f"itsacat report: error: labeled photographs {photos / 'labels.csv'} "
                     f"line 2: {photos / 'a.png'}: not a recognised image format; send one of "
                     "JPEG, PNG, GIF, WEBP, BMP, TIFF"]


def test_write_report_empty_labels_csv_raises(small_run, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "labels.csv").write_text("file,label\n")
    with pytest.raises(ReportError) as raised:
        write_report(small_run[0], images_dir=photos)
    assert raised.value.code == "invalid_labels"
    assert raised.value.message == (f"labeled photographs {photos / 'labels.csv'} lists no "
                                    "pictures; add one row file,label per picture")
