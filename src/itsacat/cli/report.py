"""`itsacat report`: rebuild the HTML report of a finished run."""

from __future__ import annotations

from pathlib import Path

from itsacat.cli.common import print_json, settings_from
from itsacat.errors import ItsacatError
from itsacat.report.errors import ReportError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="write the HTML report of a finished run",
        description="Write report.html (cost curve, metrics, confusion matrix, mislabeled "
                    "test images, per-layer insight, predictions on labeled photographs) and "
                    "its PNG figures. Example: itsacat report .itsacat/runs/RUN --images "
                    "photos/")
    parser.add_argument("run", metavar="RUN",
                        help="run folder, or the id of a run in the registry")
    parser.add_argument("--images", metavar="DIR",
                        help="folder of photographs with labels.csv (columns file,label) to "
                             "predict in the report")
    parser.add_argument("--out", metavar="DIR", help="folder for report.html and the PNG "
                        "figures (default: RUN/report)")
    parser.add_argument("--data", metavar="PATH",
                        help="data set the run was trained on (default: the path recorded in "
                             "results.json); its digest must match the run's")
    parser.add_argument("--test-data", metavar="PATH",
                        help="separate test .h5 file, when --data contains only the train split")
    parser.add_argument("--test-ratio", type=float, default=0.2,
                        help="share of an image folder held out for testing, as the run was "
                             "trained with (default 0.2)")
    parser.add_argument("--json", action="store_true", help="print the report path as JSON")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from itsacat.report import write_report  # loads matplotlib, so only when it runs

    folder = resolve_run_folder(args.run, args)
    path = write_report(folder, args.data, args.out, args.images, test_data=args.test_data,
                        test_ratio=args.test_ratio)
    if args.json:
        print_json({"run_folder": str(folder), "report": str(path.absolute())})
    else:
        print(f"report: {path.absolute()}")
    return 0


def resolve_run_folder(run: str, args) -> Path:
    """Return the folder of `run`: a path to a run folder, or a run id from the registry.

    Anything that exists on disk or contains a path separator is taken as a folder, so that
    a mistyped path is reported as a missing folder without opening the registry.
    """
    path = Path(run)
    if path.exists() or "/" in run or "\\" in run:
        return path
    try:
        from itsacat.registry import open_registry
    except ImportError:
        return path
    try:
        return Path(open_registry(settings_from(args)).get_run(run).folder)
    except ItsacatError as error:
        if not error.code.endswith("not_found"):
            raise
        raise ReportError("run_not_found", f"run {run!r} not found: it is neither a run "
                          "folder nor the id of a run in the registry; pass the run folder "
                          "or an id from itsacat runs list") from None
