"""`itsacat runs`: the training runs recorded in the registry."""

from __future__ import annotations

from pathlib import Path

from itsacat.cli.common import print_json, print_table, settings_from
from itsacat.registry import RunStatus, open_registry
from itsacat.training.run import folder_run_id

COST_ROWS = 10  # epochs that `runs show` prints, spread over the run


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "runs", help="list and inspect training runs",
        description="Training runs recorded by itsacat train. A running run whose process "
                    "is gone is marked interrupted when runs are listed. Example: itsacat "
                    "runs list --status completed")
    actions = parser.add_subparsers(dest="runs_action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="the newest runs first",
                                 description="Example: itsacat runs list --limit 10")
    listing.add_argument("--status", choices=[status.value for status in RunStatus],
                         help="only runs in this status")
    listing.add_argument("--limit", type=int, default=50,
                         help="maximum number of runs (default 50)")
    listing.add_argument("--json", action="store_true", help="print the runs as JSON")
    listing.set_defaults(handler=list_runs)

    show = actions.add_parser("show", help="one run: settings, metrics and cost curve",
                              description="Example: itsacat runs show 3f2a9c")
    show.add_argument("run", metavar="RUN", help="run id, a prefix of it, or a run folder")
    show.add_argument("--json", action="store_true",
                      help="print the run, with every epoch's cost, as JSON")
    show.set_defaults(handler=show_run)


def list_runs(args) -> int:
    with open_registry(settings_from(args)) as registry:
        runs = registry.list_runs(args.status, args.limit)
    if args.json:
        print_json([run.to_json() for run in runs])
        return 0
    print_table(["RUN", "STATUS", "STARTED", "ENGINE", "STRATEGY", "SEED", "EPOCHS", "COST",
                 "TEST ACC"],
                [[run.id, run.status.value, run.started_at, run.engine, run.strategy,
                  run.seed, run.epochs_completed, run.final_cost, run.test_accuracy]
                 for run in runs])
    return 0


def show_run(args) -> int:
    # A run folder names the run it contains, as in `models register` and `report`.
    folder = Path(args.run)
    run_id = (folder_run_id(folder) if folder.is_dir() else None) or args.run
    with open_registry(settings_from(args)) as registry:
        run = registry.get_run(run_id)
    if args.json:
        print_json(run.to_json())
        return 0

    network = "-".join(str(count) for count in run.spec.get("neurons", {}).values())
    print_table(["FIELD", "VALUE"], [
        ["run", run.id], ["status", run.status.value], ["message", run.message],
        ["folder", run.folder], ["dataset", run.dataset_source],
        ["dataset digest", run.dataset_digest], ["engine", run.engine],
        ["strategy", run.strategy], ["seed", run.seed], ["network", network],
        ["started", run.started_at], ["finished", run.finished_at],
        ["training seconds", run.training_seconds], ["epochs", run.epochs_completed],
        ["stopped early", run.stopped_early], ["final cost", run.final_cost],
        ["code version", run.code_version], ["process", f"{run.pid} on {run.host}"],
        ["heartbeat", run.heartbeat_at]])
    print_metrics(run.metrics)
    if run.costs:
        step = max(1, len(run.costs) // COST_ROWS)
        epochs = sorted(set(range(0, len(run.costs), step)) | {len(run.costs) - 1})
        print()
        print_table(["EPOCH", "COST"], [[epoch, f"{run.costs[epoch]:.6f}"]
                                        for epoch in epochs])
    return 0


def print_metrics(metrics: dict | None) -> None:
    """Print train and test metrics side by side, after a blank line; nothing when absent."""
    if not metrics or "train" not in metrics or "test" not in metrics:
        return
    print()
    print_table(["METRIC", "TRAIN", "TEST"],
                [[name, metrics["train"].get(name), metrics["test"].get(name)]
                 for name in ("accuracy", "precision", "sensitivity", "specificity", "f1")])
