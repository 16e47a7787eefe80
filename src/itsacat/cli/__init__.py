"""The `itsacat` command. Each subcommand lives in its own module with `add_parser`."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from itsacat import __version__
from itsacat.errors import ItsacatError
from itsacat.nn import SpecError
from itsacat.nn.io import ModelFileError
from itsacat.training.progress import configure_logging

log = logging.getLogger("itsacat.cli")

# Modules under itsacat.cli, in the order their commands appear in --help.
COMMANDS = ["train", "evaluate", "predict", "report", "runs", "models", "serve", "pipeline", "up",
            "demo", "rollback"]

EXPECTED_ERRORS = (ItsacatError, SpecError, ModelFileError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="itsacat",
        description="Train, register, deliver and serve an 'is this a cat picture?' model.")
    parser.add_argument("--version", action="version", version=f"itsacat {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    parser.add_argument("--home", help="state folder (default: $ITSACAT_HOME or ./.itsacat)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"itsacat.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; expected errors print one line and exit with status 2."""
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        return args.handler(args) or 0
    except EXPECTED_ERRORS as error:
        print(f"itsacat {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"itsacat {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug, not bad input: keep the trace for -v
        log.debug("unexpected error", exc_info=True)
        print(f"itsacat {args.command}: internal error: {type(error).__name__}: {error}; "
              "rerun with -v for the traceback", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
