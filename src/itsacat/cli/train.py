"""`itsacat train`: train a network on a data set and write a run folder."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from itsacat.cli.common import print_json, settings_from
from itsacat.data import load_dataset
from itsacat.nn import STRATEGIES, load_spec, parse_spec
from itsacat.registry import RegistryRecorder, open_registry
from itsacat.training import create_engine, train
from itsacat.training.progress import ProgressDisplay

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
    add_data_arguments(parser)
    parser.add_argument("--params", help="network spec (parameters.json); default: the "
                        "reference 20-7-5-1 network")
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
    parser.add_argument("--resume", metavar="DIR", help="continue the interrupted run in DIR")
    parser.add_argument("--checkpoint-every", type=int, default=100, metavar="N",
                        help="write a checkpoint every N epochs (default 100)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--no-report", action="store_true",
                        help="skip the HTML report (RUN/report/report.html)")
    parser.set_defaults(handler=run)


def add_data_arguments(parser) -> None:
    parser.add_argument("--data", required=True,
                        help="data set: an .h5 file in the reference layout or an image "
                             "folder root/<class name>/*.jpg")
    parser.add_argument("--test-data", help="separate test .h5 file, when --data holds only "
                        "the train split")
    parser.add_argument("--test-ratio", type=float, default=0.2,
                        help="share of an image folder held out for testing (default 0.2)")


def load_run_spec(args):
    """Read the spec from --params or the default, and apply the command-line overrides."""
    spec = load_spec(args.params) if args.params else parse_spec(DEFAULT_SPEC, "default spec")
    return spec.with_overrides(seed=args.seed, strategy=args.strategy, epochs=args.epochs,
                               dtype=args.dtype)


def run(args) -> int:
    settings = settings_from(args)
    spec = load_run_spec(args)
    dataset = load_dataset(args.data, args.test_data, test_ratio=args.test_ratio,
                           seed=spec.seed)
    folder = Path(args.resume or args.out or settings.runs_dir / _run_name())
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
    print(f"run {result.run_id}: {len(result.costs)} epochs in {result.elapsed:.1f}s{stop}, "
          f"final cost {result.costs[-1]:.6f}")
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
