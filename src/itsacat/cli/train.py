"""`itsacat train`: train a network on a data set and write a run folder."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from itsacat.cli.common import print_json, settings_from
from itsacat.data import load_dataset
from itsacat.nn import STRATEGIES, load_spec, parse_spec
from itsacat.nn.io import write_json_atomic
from itsacat.registry import RegistryRecorder, open_registry
from itsacat.training import TrainingError, create_engine, train
from itsacat.training.progress import ProgressDisplay
from itsacat.training.run import checkpoint_spec

# The data set arguments of a run, kept in its folder for --resume.
INPUTS_FILE = "inputs.json"

# The reference network (12288-20-7-5-1), used when --params is not given.
DEFAULT_SPEC = {
    "epochs": 2500, "layers": 4,
    "activations": {"layer1": "relu", "layer2": "relu", "layer3": "relu", "layer4": "sigmoid"},
    "neurons": {"layer1": 20, "layer2": 7, "layer3": 5, "layer4": 1},
    "learning_rate": 0.0075, "batch_size": 64, "threshold": 0.0019,
}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a network on a data set",
        description="Train a network and write results.json, params.h5 and parameters.json "
                    "into a run folder. Example: itsacat train --data datasets.h5 "
                    "--params parameters.json --seed 3")
    add_data_arguments(parser, required=False)
    parser.add_argument("--params", help="network spec (parameters.json); default: the "
                        "reference 20-7-5-1 network, or the spec of the run to --resume")
    parser.add_argument("--engine", default="vectorized",
                        help="how to execute the mathematics: vectorized (default), serverless")
    parser.add_argument("--executor", choices=["inline", "threads", "ray"], default="inline",
                        help="where serverless invocations run: inline (default, one thread, "
                             "deterministic), threads (a pool), ray (Ray tasks)")
    parser.add_argument("--param-store", metavar="URL",
                        help="serverless parameter store: memory or redis://host:port/db "
                             "(default: $ITSACAT_PARAM_STORE or memory)")
    parser.add_argument("--strategy", choices=sorted(STRATEGIES),
                        help="how minibatches combine (overrides the spec)")
    parser.add_argument("--seed", type=int, help="random seed (overrides the spec)")
    parser.add_argument("--epochs", type=int, help="number of epochs (overrides the spec)")
    parser.add_argument("--dtype", choices=["float32", "float64"],
                        help="floating-point precision (overrides the spec)")
    parser.add_argument("--out", help="run folder (default: $ITSACAT_HOME/runs/<time>)")
    parser.add_argument("--resume", metavar="DIR",
                        help="continue the interrupted run in DIR, with its data set and spec "
                             "unless --data or --params is given")
    parser.add_argument("--checkpoint-every", type=int, default=100, metavar="N",
                        help="write a checkpoint every N epochs (default 100)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--no-report", action="store_true",
                        help="skip the HTML report (RUN/report/report.html)")
    parser.set_defaults(handler=run)


def add_data_arguments(parser, required: bool = True) -> None:
    parser.add_argument("--data", required=required,
                        help="data set: an .h5 file in the reference layout or an image "
                             "folder root/<class name>/*.jpg")
    parser.add_argument("--test-data", help="separate test .h5 file, when --data contains only "
                        "the train split")
    parser.add_argument("--test-ratio", type=float, default=0.2,
                        help="share of an image folder held out for testing (default 0.2)")


def load_run_spec(args):
    """Read the spec from --params, the run to resume or the default, and apply the
    command-line overrides."""
    if args.params:
        spec = load_spec(args.params)
    elif args.resume:
        spec = parse_spec(checkpoint_spec(Path(args.resume)), f"checkpoint of {args.resume}")
    else:
        spec = parse_spec(DEFAULT_SPEC, "default spec")
    return spec.with_overrides(seed=args.seed, strategy=args.strategy, epochs=args.epochs,
                               dtype=args.dtype)


def resolve_data(args, folder: Path) -> dict:
    """Return the data set arguments: the command line's, or those the resumed run used.

    They are kept in the run folder as absolute paths, so a resume works from any folder.
    """
    inputs_file = folder / INPUTS_FILE
    if args.data:
        inputs = {"data": str(Path(args.data).absolute()),
                  "test_data": str(Path(args.test_data).absolute()) if args.test_data else None,
                  "test_ratio": args.test_ratio}
    elif args.resume and inputs_file.exists():
        return json.loads(inputs_file.read_text(encoding="utf-8"))
    elif args.resume:
        raise TrainingError("missing_data", f"cannot resume {folder}: it does not record its "
                            "data set; pass --data with the data set the run started with")
    else:
        raise TrainingError("missing_data", "no data set given; pass --data with an .h5 file "
                            "or an image folder (root/<class name>/*.jpg)")
    if not args.resume:
        folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(inputs_file, inputs)
    return inputs


def run(args) -> int:
    settings = settings_from(args)
    folder = Path(args.resume or args.out or settings.runs_dir / _run_name())
    spec = load_run_spec(args)
    inputs = resolve_data(args, folder)
    dataset = load_dataset(inputs["data"], inputs["test_data"],
                           test_ratio=inputs["test_ratio"], seed=spec.seed)
    options = ({"executor": args.executor,
                "param_store": args.param_store or settings.param_store}
               if args.engine == "serverless" else {})
    engine = create_engine(args.engine, **options)

    with open_registry(settings) as registry:
        observers = [ProgressDisplay(spec.epochs), RegistryRecorder(registry)]
        result = train(dataset, spec, engine, folder, observers=observers,
                       checkpoint_every=args.checkpoint_every, resume=bool(args.resume))
    report = None if args.no_report else _write_report(folder, dataset)

    if args.json:
        print_json({"run": result.results["run"], "folder": str(folder),
                    "metrics": result.results["metrics"],
                    "report": str(report) if report else None})
        return 0
    train_m, test_m = result.train_metrics, result.test_metrics
    stop = " (stopped early at the threshold)" if result.stopped_early else ""
    epochs = len(result.costs)
    print(f"run {result.run_id}: {epochs} epoch{'' if epochs == 1 else 's'} in "
          f"{result.elapsed:.1f}s{stop}, final cost {result.costs[-1]:.6f}")
    print(f"train accuracy {train_m.accuracy:.4f}   test accuracy {test_m.accuracy:.4f}   "
          f"test F1 {test_m.f1:.4f}")
    print(f"run folder: {folder}")
    if report:
        print(f"report: {report}")
    return 0


def _run_name() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")


def _write_report(folder: Path, dataset) -> Path:
    from itsacat.report import write_report  # loads matplotlib, so only after training

    return write_report(folder, dataset).absolute()
