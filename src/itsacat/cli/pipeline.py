"""`itsacat pipeline`: start, inspect, approve and run pipeline executions."""

from __future__ import annotations

import getpass
import threading
from pathlib import Path
from typing import Any

from itsacat.cli.common import print_json, print_table, settings_from
from itsacat.errors import ItsacatError
from itsacat.registry import ApprovalDecision, Execution, ExecutionStatus, StageStatus

EXIT_FAILED = 1
# Executions that only a worker moves on; status says when none holds them.
UNATTENDED = (ExecutionStatus.pending, ExecutionStatus.running, ExecutionStatus.interrupted)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "pipeline", help="run and inspect the delivery pipeline",
        description="Train, register, release, deploy to green, verify, gate, approve and "
                    "promote to blue. Example: itsacat pipeline run --data datasets.h5 "
                    "--approval auto")
    commands = parser.add_subparsers(dest="pipeline_command", required=True,
                                     metavar="SUBCOMMAND")

    run_parser = commands.add_parser(
        "run", help="train on a data set and deliver the model",
        description="Start a full execution on a data set and run it here until it "
                    "finishes or waits for approval. Example: itsacat pipeline run --data "
                    "datasets.h5 --params parameters.json")
    run_parser.add_argument("--data", required=True, help="data set: an .h5 file or an "
                            "image folder root/<class name>/*.jpg")
    run_parser.add_argument("--params", help="network spec (parameters.json); default: the "
                            "reference 20-7-5-1 network")
    run_parser.add_argument("--epochs", type=int, help="number of epochs (overrides the spec)")
    add_config_arguments(run_parser)
    run_parser.set_defaults(handler=run_full)

    deliver_parser = commands.add_parser(
        "deliver", help="deliver a model version registered by hand",
        description="Start an execution of the delivery stages only, for a model version "
                    "already in the registry. Example: itsacat pipeline deliver 3")
    deliver_parser.add_argument("version", type=int, help="model version id")
    add_config_arguments(deliver_parser)
    deliver_parser.set_defaults(handler=run_deliver)

    status_parser = commands.add_parser(
        "status", help="show where executions stand",
        description="List the newest executions, or show one execution's stages, approvals "
                    "and why it stopped. Example: itsacat pipeline status 3f2a9c")
    status_parser.add_argument("execution", nargs="?", help="execution id")
    status_parser.add_argument("--limit", type=int, default=20, help="executions to list")
    status_parser.add_argument("--json", action="store_true", help="print JSON")
    status_parser.set_defaults(handler=show_status)

    for name, decision in (("approve", ApprovalDecision.approved),
                           ("reject", ApprovalDecision.rejected)):
        decision_parser = commands.add_parser(
            name, help=f"{name} an execution awaiting approval",
            description=f"Record who decided to {name} the promotion, and why, then continue "
                        f"the execution here unless a worker holds it. Example: itsacat "
                        f"pipeline {name} 3f2a9c --by alice --reason 'checked the report'")
        decision_parser.add_argument("execution", help="execution id")
        decision_parser.add_argument("--by", required=True, help="who decides")
        decision_parser.add_argument("--reason", required=True, help="why")
        decision_parser.add_argument("--no-continue", action="store_true",
                                     help="only record the decision; a worker continues")
        decision_parser.set_defaults(handler=record_decision, decision=decision)

    worker_parser = commands.add_parser(
        "worker", help="run the pipeline worker and the inbox watcher",
        description="Run pending and resumable executions, and start one for every data set "
                    "dropped into $ITSACAT_HOME/inbox/training_input/. Example: itsacat "
                    "pipeline worker")
    worker_parser.add_argument("--once", action="store_true",
                               help="run what needs work now, then exit")
    worker_parser.add_argument("--no-inbox", action="store_true",
                               help="do not watch the inbox")
    worker_parser.add_argument("--epochs", type=int,
                               help="epochs for executions the inbox starts")
    add_config_arguments(worker_parser)
    worker_parser.set_defaults(handler=run_worker)


def add_config_arguments(parser) -> None:
    """Flags that override itsacat.toml; each maps to one setting."""
    parser.add_argument("--config", help="pipeline settings file (default: $ITSACAT_CONFIG, "
                        "./itsacat.toml, $ITSACAT_HOME/itsacat.toml)")
    parser.add_argument("--approval", choices=["manual", "auto"],
                        help="manual: wait for itsacat pipeline approve; auto: approve when "
                             "every blocking gate passed")
    parser.add_argument("--host", help="address of the blue and green services "
                        "(default 127.0.0.1)")
    parser.add_argument("--blue-port", type=int, help="port of the blue service (default 8000)")
    parser.add_argument("--green-port", type=int,
                        help="port of the green service (default 8080)")
    parser.add_argument("--ready-timeout", type=float,
                        help="seconds a service may take to serve a new version (default 30)")
    parser.add_argument("--smoke-images", metavar="DIR",
                        help="folder of labeled smoke images with labels.csv (file,label)")
    parser.add_argument("--smoke-labels", choices=["blocking", "advisory"],
                        help="whether a wrong label on a smoke image fails the gate")
    parser.add_argument("--min-accuracy", type=float, help="minimum test accuracy, 0 to 1")
    parser.add_argument("--max-regression", type=float,
                        help="how far below blue's test accuracy a candidate may fall")
    parser.add_argument("--latency-budget", type=float, metavar="MS",
                        help="maximum duration of a smoke request, in milliseconds")
    parser.add_argument("--webhook", action="append", metavar="URL",
                        help="POST notifications to URL (repeatable; replaces the file's)")
    parser.add_argument("--admin-port", type=int, help="port of the admin endpoint")


def config_from(args, home: Path):
    """Read itsacat.toml and apply the flags of `add_config_arguments`."""
    from itsacat.pipeline import load_config

    config = load_config(getattr(args, "config", None), home)
    return config.replace(
        approval=getattr(args, "approval", None),
        services__host=getattr(args, "host", None),
        services__blue_port=getattr(args, "blue_port", None),
        services__green_port=getattr(args, "green_port", None),
        services__ready_timeout=getattr(args, "ready_timeout", None),
        gates__smoke_images=_absolute(getattr(args, "smoke_images", None)),
        gates__smoke_labels=getattr(args, "smoke_labels", None),
        gates__min_test_accuracy=getattr(args, "min_accuracy", None),
        gates__max_regression=getattr(args, "max_regression", None),
        gates__latency_budget_ms=getattr(args, "latency_budget", None),
        notify__webhooks=tuple(args.webhook) if getattr(args, "webhook", None) else None,
        admin__port=getattr(args, "admin_port", None))


def run_full(args) -> int:
    from itsacat.pipeline import ExecutionSettings

    settings = settings_from(args)
    data = Path(args.data)
    if not data.exists():
        raise ItsacatError("data_not_found", f"data set {data}: no such file or folder; pass "
                           "--data with an .h5 file or an image folder")
    execution_settings = ExecutionSettings(
        kind="full", config=config_from(args, settings.home), data_path=str(data.absolute()),
        params_path=_absolute(args.params), epochs=args.epochs)
    return start_and_run(settings, execution_settings, "cli: pipeline run")


def run_deliver(args) -> int:
    from itsacat.pipeline import ExecutionSettings
    from itsacat.registry import open_registry

    settings = settings_from(args)
    with open_registry(settings) as registry:
        registry.get_version(args.version)  # fail now, with one line, on an unknown version
    execution_settings = ExecutionSettings(
        kind="deliver", config=config_from(args, settings.home),
        model_version_id=args.version)
    return start_and_run(settings, execution_settings, "cli: pipeline deliver")


def start_and_run(settings, execution_settings, trigger: str) -> int:
    """Create an execution, run it in this process and print where it ended."""
    from itsacat.pipeline import Executor, create_execution
    from itsacat.registry import open_registry

    with open_registry(settings) as registry:
        execution = create_execution(registry, execution_settings, trigger)
        print(f"execution {execution.id}: started ({trigger})")
        finished = Executor(registry, settings.home).run(
            execution.id)
        return report_end(finished or registry.get_execution(execution.id))


def report_end(execution: Execution) -> int:
    """Print how the execution ended and return the command's exit status."""
    if execution.status == ExecutionStatus.succeeded:
        print(f"execution {execution.id}: succeeded; blue serves model version "
              f"{execution.model_version_id}")
        return 0
    if execution.status == ExecutionStatus.awaiting_approval:
        print(f"execution {execution.id}: awaiting approval; decide with\n"
              f"  itsacat pipeline approve {execution.id} --by NAME --reason TEXT\n"
              f"  itsacat pipeline reject {execution.id} --by NAME --reason TEXT")
        return 0
    stage, reason = why_stopped(execution)
    print(f"execution {execution.id}: {execution.status} at stage {stage}: {reason}")
    return EXIT_FAILED


def why_stopped(execution: Execution) -> tuple[str | None, str]:
    """Return the stage an execution stopped at and the reason it recorded."""
    for stage in execution.stages:
        if stage.status == StageStatus.failed:
            return stage.name, (stage.outcome or {}).get("reason", "failed")
    for stage in execution.stages:
        if stage.status in (StageStatus.running, StageStatus.waiting):
            last = stage.log.strip().splitlines()[-1:] if stage.log else []
            return stage.name, last[0] if last else str(stage.status)
    return None, str(execution.status)


def show_status(args) -> int:
    from itsacat.pipeline import state
    from itsacat.registry import open_registry

    with open_registry(settings_from(args)) as registry:
        if args.execution:
            execution = registry.get_execution(args.execution)
            if args.json:
                print_json(execution.to_json())
            else:
                print_execution(execution)
            return 0
        executions = [registry.get_execution(execution.id)
                      for execution in registry.list_executions(limit=args.limit)]
        held = {execution.id for execution in executions
                if state.lease_holder(registry, state.execution_lease(execution.id))}
    if args.json:
        print_json([execution.to_json() for execution in executions])
        return 0

    rows = []
    for execution in executions:
        stage, reason = why_stopped(execution)
        if execution.status in UNATTENDED and execution.id not in held:
            reason = "no worker runs it; itsacat up or itsacat pipeline worker resumes it"
        rows.append([execution.id, str(execution.status), execution.trigger,
                     execution.model_version_id, stage, _shorten(reason, 70),
                     execution.updated_at])
    print_table(["execution", "status", "trigger", "model version", "stage", "why",
                 "updated"], rows)
    return 0


def print_execution(execution: Execution) -> None:
    print(f"execution {execution.id}: {execution.status} (trigger: {execution.trigger}, "
          f"model version: {execution.model_version_id or '-'})")
    rows = []
    for stage in execution.stages:
        seconds = ((stage.finished_at - stage.started_at).total_seconds()
                   if stage.started_at and stage.finished_at else None)
        detail = (stage.outcome or {}).get("reason") or _last_line(stage.log)
        rows.append([stage.name, str(stage.status), stage.started_at, seconds,
                     _shorten(detail, 90)])
    print_table(["stage", "status", "started", "seconds", "detail"], rows)
    for approval in execution.approvals:
        print(f"{approval.decision} by {approval.by} at {approval.at:%Y-%m-%d %H:%M:%S}: "
              f"{approval.reason}")
    stage, reason = why_stopped(execution)
    if execution.status != ExecutionStatus.succeeded and stage:
        print(f"stopped at {stage}: {reason}")


def record_decision(args) -> int:
    from itsacat.pipeline import Executor, decide
    from itsacat.registry import open_registry

    settings = settings_from(args)
    with open_registry(settings) as registry:
        approval = decide(registry, args.execution, args.decision, by=args.by,
                          reason=args.reason)
        print(f"execution {args.execution}: {approval.decision} by {approval.by}")
        if args.no_continue:
            return 0
        finished = Executor(registry, settings.home).run(
            args.execution)
        if finished is None:
            print(f"execution {args.execution}: a worker holds it and continues it")
            return 0
        code = report_end(finished)
        # A rejection is a successful command even though the execution ends failed.
        return 0 if args.decision == ApprovalDecision.rejected else code


def run_worker(args) -> int:
    from itsacat.pipeline import InboxWatcher, Worker
    from itsacat.registry import open_registry

    settings = settings_from(args)
    config = config_from(args, settings.home)
    with open_registry(settings) as registry:
        worker = Worker(registry, settings.home)
        watcher = None if args.no_inbox else InboxWatcher(registry, settings.home, config,
                                                          epochs=args.epochs)
        if args.once:
            if watcher:
                watcher.poll()
            print(f"ran {worker.run_once()} execution(s)")
            return 0
        stop = threading.Event()
        threads = [threading.Thread(target=worker.run_forever, args=(stop,), name="worker")]
        if watcher:
            print(f"watching {watcher.inbox} for *.h5 data sets")
            threads.append(threading.Thread(target=watcher.run_forever, args=(stop,),
                                            name="inbox"))
        for thread in threads:
            thread.start()
        try:
            while any(thread.is_alive() for thread in threads):
                threads[0].join(0.5)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    return 0


def default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _absolute(path: str | None) -> str | None:
    return str(Path(path).absolute()) if path else None


def _last_line(text: str) -> str:
    lines = text.strip().splitlines() if text else []
    return lines[-1] if lines else ""


def _shorten(text: Any, width: int) -> str:
    text = str(text or "")
    return text if len(text) <= width else text[: width - 1] + "…"
