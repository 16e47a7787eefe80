"""`itsacat serve`: run the prediction service of one slot."""

from __future__ import annotations

import logging
import os

from itsacat.cli.common import settings_from
from itsacat.nn.io import load_model
from itsacat.registry import open_registry
from itsacat.serving.ports import check_port_free
from itsacat.serving.settings import DEFAULT_PORTS, SLOTS, ServingSettings

log = logging.getLogger("itsacat.cli")

# Flag → environment variable read by ServingSettings.from_env in every worker process.
FLAG_VARIABLES = {
    "slot": "ITSACAT_SLOT",
    "model": "ITSACAT_SERVE_MODEL",
    "max_body_bytes": "ITSACAT_MAX_BODY_BYTES",
    "max_pixels": "ITSACAT_MAX_PIXELS",
    "poll_seconds": "ITSACAT_SLOT_POLL_SECONDS",
    "fetch_allow": "ITSACAT_FETCH_ALLOW",
    "fetch_timeout": "ITSACAT_FETCH_TIMEOUT",
    "fetch_max_bytes": "ITSACAT_FETCH_MAX_BYTES",
}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve", help="run the prediction service of a slot",
        description="Serve the model version of a slot over HTTP and swap in the new one when "
                    "the slot changes. Example: itsacat serve --slot blue (port 8000); "
                    "itsacat serve --slot green (port 8080); then "
                    "curl -F file=@cat.jpg 127.0.0.1:8000/predict")
    parser.add_argument("--slot", choices=SLOTS, required=True, help="the slot to serve")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int,
                        help="port (default: 8000 for blue, 8080 for green)")
    # NOTE: each worker polls the slot on its own, so after a promotion workers can serve
    # different versions for up to one poll interval; each response still names its version.
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes, each with its own copy of the model "
                             "(default: 1)")
    parser.add_argument("--model", metavar="FOLDER",
                        help="serve this model folder (params.h5 + parameters.json) instead "
                             "of the slot's model version; $ITSACAT_SERVE_MODEL")
    parser.add_argument("--max-body-bytes", type=int,
                        help="largest request body in bytes (default: 10 MiB); "
                             "$ITSACAT_MAX_BODY_BYTES")
    parser.add_argument("--max-pixels", type=int,
                        help="largest picture in pixels, checked from its header before "
                             "decoding (default: 25 million); $ITSACAT_MAX_PIXELS")
    parser.add_argument("--poll-seconds", type=float,
                        help="how often the slot is checked for a new model version "
                             "(default: 0.5); $ITSACAT_SLOT_POLL_SECONDS")
    parser.add_argument("--fetch-allow", metavar="NETWORKS",
                        help="comma-separated networks that URL fetches may reach although "
                             "they are loopback or private, e.g. 127.0.0.1/32 or "
                             "10.0.0.0/8:8081 for one port; $ITSACAT_FETCH_ALLOW")
    parser.add_argument("--fetch-timeout", type=float,
                        help="deadline in seconds of a whole URL fetch (default: 10); "
                             "$ITSACAT_FETCH_TIMEOUT")
    parser.add_argument("--fetch-max-bytes", type=int,
                        help="largest fetched picture in bytes (default: 10 MiB); "
                             "$ITSACAT_FETCH_MAX_BYTES")
    parser.set_defaults(handler=run)


def run(args) -> int:
    import uvicorn

    for flag, variable in FLAG_VARIABLES.items():
        value = getattr(args, flag)
        if value is not None:
            os.environ[variable] = str(value)
    settings = settings_from(args)
    os.environ["ITSACAT_HOME"] = str(settings.home)
    serving = ServingSettings.from_env()  # fail here, with one line, on a bad setting
    if serving.model_folder is None:
        # Open the registry once here too, so that a wrong URL or an unreachable database is
        # one line and exit status 2, not a traceback from every worker.
        open_registry(settings).close()
    else:
        load_model(serving.model_folder)  # a missing or broken folder is one line, status 2

    port = args.port or DEFAULT_PORTS[args.slot]
    check_port_free(args.host, port, f"the {args.slot} service")
    uvicorn_log = logging.getLogger("uvicorn")
    uvicorn_log.handlers[:] = logging.getLogger("itsacat").handlers
    uvicorn_log.setLevel(logging.INFO)
    log.info("serving slot %s on http://%s:%d (%d worker%s)", args.slot, args.host, port,
             args.workers, "" if args.workers == 1 else "s")
    uvicorn.run("itsacat.serving.app:app_from_env", factory=True, host=args.host, port=port,
                workers=args.workers, access_log=False, log_config=None,
                timeout_graceful_shutdown=10)
    return 0
