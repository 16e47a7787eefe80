"""`itsacat up`: run the blue and green services, the pipeline worker, the inbox watcher and
the admin endpoint, until Ctrl-C."""

from __future__ import annotations

import os
import signal
import threading

from itsacat.cli.common import settings_from
from itsacat.cli.pipeline import add_config_arguments, config_from


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "up", help="run the services, the pipeline worker and the inbox watcher",
        description="Start blue (:8000) and green (:8080), the pipeline worker, the inbox "
                    "watcher and the admin endpoint (:8090) in one command; Ctrl-C stops "
                    "them all. Example: itsacat up, then copy datasets.h5 into "
                    "$ITSACAT_HOME/inbox/training_input/")
    parser.add_argument("--epochs", type=int, help="epochs for executions the inbox starts")
    parser.add_argument("--no-admin", action="store_true", help="do not start the admin "
                        "endpoint")
    add_config_arguments(parser)
    parser.set_defaults(handler=run)


def run(args) -> int:
    from itsacat.pipeline.admin import TOKEN_VARIABLE
    from itsacat.pipeline.stack import Stack
    from itsacat.registry import open_registry

    settings = settings_from(args)
    config = config_from(args, settings.home)
    stopping = threading.Event()
    # Both handlers are set explicitly: a shell starting `up` in the background makes it
    # inherit an ignored SIGINT, and SIGTERM should stop it the way Ctrl-C does.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda received, frame: stopping.set())

    with open_registry(settings) as registry:
        stack = Stack(registry, settings.home, config, admin=not args.no_admin, epochs=args.epochs)
        with stack:
            urls = stack.urls()
            print(f"blue  (production): {urls['blue']}")
            print(f"green (staging):    {urls['green']}")
            if "admin" in urls:
                state = "" if os.environ.get(TOKEN_VARIABLE) else \
                    f" (refuses every request: {TOKEN_VARIABLE} is not set)"
                print(f"admin (approvals):  {urls['admin']}{state}")
            print(f"waiting for data sets: copy NAME.h5 (and an optional parameters.json) "
                  f"into {stack.inbox.inbox}/")
            print("or start an execution with: itsacat pipeline run --data PATH | "
                  "itsacat pipeline deliver VERSION")
            print(f"approval: {config.approval}; Ctrl-C stops everything", flush=True)
            while not stopping.wait(0.5):
                dead = [slot for slot, service in stack.services.items()
                        if service.process.poll() is not None]
                if dead:
                    print(f"the {dead[0]} service exited; see "
                          f"{stack.services[dead[0]].log_path}; stopping")
                    return 1
            print("stopping…", flush=True)
    return 0
