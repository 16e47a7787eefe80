"""`itsacat rollback`: put blue back to the model version it served before."""

from __future__ import annotations

from itsacat.cli.common import settings_from
from itsacat.cli.pipeline import default_user


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "rollback", help="restore the previous model version of blue",
        description="Point blue back at its previous model version; the services reload it "
                    "within a poll. Rolling back twice returns to where you started. "
                    "Example: itsacat rollback --by alice --reason 'false positives'")
    parser.add_argument("--slot", choices=["blue", "green"], default="blue",
                        help="slot to roll back (default: blue)")
    parser.add_argument("--by", default=default_user(), help="who rolls back (default: you)")
    parser.add_argument("--reason", default="rollback from the command line",
                        help="why, for the audit log")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from itsacat.pipeline import rollback
    from itsacat.registry import open_registry

    with open_registry(settings_from(args)) as registry:
        change = rollback(registry, slot=args.slot, by=args.by, reason=args.reason)
    print(f"{change.slot}: model version {change.from_version_id} -> model version "
          f"{change.to_version_id} (generation {change.generation})")
    return 0
