"""`itsacat demo`: one full pipeline execution with auto approval, against real services."""

from __future__ import annotations

import contextlib
import signal
import time
from pathlib import Path

from itsacat.cli.common import settings_from
from itsacat.cli.pipeline import add_config_arguments, config_from, report_end
from itsacat.errors import ItsacatError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="train, verify and promote a model to blue in one command",
        description="Start the blue and green services, run one full execution on the data "
                    "set with auto approval, and print the URLs, the model's metrics and "
                    "the report. Example: itsacat demo --data datasets.h5 --serve")
    parser.add_argument("--data", required=True,
                        help="data set: an .h5 file in the reference layout or an image "
                             "folder root/<class name>/*.jpg")
    parser.add_argument("--params", help="network spec (parameters.json); default: the "
                        "reference 20-7-5-1 network")
    parser.add_argument("--epochs", type=int, help="number of epochs (overrides the spec)")
    parser.add_argument("--serve", action="store_true",
                        help="keep the services running after the execution, until Ctrl-C")
    add_config_arguments(parser)
    parser.set_defaults(handler=run)


def run(args) -> int:
    from itsacat.pipeline import ExecutionSettings, Executor, create_execution
    from itsacat.pipeline.stack import Stack
    from itsacat.registry import open_registry

    data = Path(args.data)
    if not data.exists():
        raise ItsacatError("data_not_found", missing_data_message(data))
    settings = settings_from(args)
    config = config_from(args, settings.home).replace(approval="auto")
    execution_settings = ExecutionSettings(
        kind="full", config=config, data_path=str(data.absolute()),
        params_path=str(Path(args.params).absolute()) if args.params else None,
        epochs=args.epochs)
    _interrupt_on_signals()

    with open_registry(settings) as registry, Stack(
            registry, settings.home, config, worker=False, inbox=False, admin=False) as stack:
        urls = stack.urls()
        print(f"blue  (production): {urls['blue']}\ngreen (staging):    {urls['green']}")
        execution = create_execution(registry, execution_settings, "cli: demo")
        print(f"execution {execution.id}: training on {data} and delivering with auto "
              "approval", flush=True)
        finished = Executor(registry, settings.home).run(
            execution.id)
        code = report_end(finished)
        print_results(finished)
        if code == 0 and not args.serve:
            print("the services stop with the demo; add --serve to keep blue and green up")
        if args.serve and code == 0:
            print(f"try: curl -F file=@picture.jpg {urls['blue'].removeprefix('http://')}"
                  "/predict")
            print("serving until Ctrl-C", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(0.5)
    return code


def _interrupt_on_signals() -> None:
    """Make Ctrl-C and SIGTERM raise KeyboardInterrupt, which stops the services on the way out.

    The handlers are set explicitly because a shell that starts the demo in the background
    makes it inherit an ignored SIGINT.
    """

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def print_results(execution) -> None:
    """Print the candidate's metrics and the report's path, from the stages' outcomes."""
    stages = {stage.name: stage for stage in execution.stages}
    evaluated = (stages["evaluate"].outcome or {}) if "evaluate" in stages else {}
    metrics = evaluated.get("metrics")
    if metrics:
        train, test = metrics["train"], metrics["test"]
        print(f"model version {execution.model_version_id}: train accuracy "
              f"{train['accuracy']:.4f}, test accuracy {test['accuracy']:.4f}, "
              f"test F1 {test.get('f1', float('nan')):.4f}")
    if evaluated.get("report"):
        print(f"report: {evaluated['report']}")
    print(f"status: itsacat pipeline status {execution.id}")


def missing_data_message(data: Path) -> str:
    return (f"no data set at {data}. Put the reference datasets.h5 (train_set_x, "
            f"train_set_y, test_set_x, test_set_y, list_classes) there, or point at yours: "
            f"ITSACAT_DATA=path/to/datasets.h5 make demo, or an image folder with one "
            f"subfolder per class (root/cat/*.jpg, root/non-cat/*.jpg): "
            f"ITSACAT_DATA=path/to/folder make demo")
