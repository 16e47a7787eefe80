"""`itsacat models`: register, import, export and list model versions; move the slots."""

from __future__ import annotations

import getpass
import socket

from itsacat.cli.common import print_json, print_table, settings_from
from itsacat.cli.runs import print_metrics
from itsacat.registry import SLOT_NAMES, ModelVersion, SlotChange, open_registry
from itsacat.registry.reference import (
    export_reference_model,
    import_reference_model,
    parse_class_names,
    parse_version_id,
    register_run,
)
from itsacat.registry.store import ANY_VERSION


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "models", help="model versions and the blue and green slots",
        description="Model versions are immutable; the blue (production) and green (staging) "
                    "slots each point at one. Example: itsacat models promote 3 --slot green")
    actions = parser.add_subparsers(dest="models_action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="the newest model versions first",
                                 description="Example: itsacat models list")
    listing.add_argument("--limit", type=int, default=50,
                         help="maximum number of model versions (default 50)")
    _add_json(listing, "the model versions and the slots")
    listing.set_defaults(handler=list_models)

    show = actions.add_parser("show", help="one model version: lineage, metrics, slots",
                              description="Example: itsacat models show 3")
    show.add_argument("version", metavar="VERSION", help="model version, e.g. 3")
    _add_json(show, "the model version")
    show.set_defaults(handler=show_model)

    register = actions.add_parser(
        "register", help="register the final model of a completed run",
        description="Example: itsacat models register 3f2a9c1d7e0b, or itsacat models "
                    "register .itsacat/runs/20260101-120000-000000")
    register.add_argument("run", metavar="RUN", help="run id (or a prefix of it) or run folder")
    _add_json(register, "the new model version")
    register.set_defaults(handler=register_model)

    importing = actions.add_parser(
        "import", help="register a reference params.h5 + parameters.json pair",
        description="Example: itsacat models import --params-h5 params.h5 --spec "
                    "parameters.json --classes non-cat,cat")
    importing.add_argument("--params-h5", required=True, metavar="FILE",
                           help="weights: datasets W1…WL and b1…bL")
    importing.add_argument("--spec", required=True, metavar="FILE",
                           help="network spec (parameters.json)")
    importing.add_argument("--classes", default="non-cat,cat",
                           help="names of class 0 and class 1 (default: non-cat,cat)")
    _add_json(importing, "the new model version")
    importing.set_defaults(handler=import_model)

    export = actions.add_parser(
        "export", help="write a model version as params.h5 + parameters.json",
        description="Writes params.h5, parameters.json and classes.json into DIR. "
                    "Example: itsacat models export 3 exported/")
    export.add_argument("version", metavar="VERSION", help="model version, e.g. 3")
    export.add_argument("folder", metavar="DIR", help="folder to write into (created)")
    export.set_defaults(handler=export_model)

    promote = actions.add_parser(
        "promote", help="point a slot at a model version",
        description="Compare-and-swap: the slot changes only if it still holds what "
                    "--expect says (by default, what it held when this command read it), so "
                    "of two promotions at once only one wins. Example: itsacat models "
                    "promote 3 --slot blue --expect 2 --reason 'gates passed'")
    promote.add_argument("version", metavar="VERSION", help="model version, e.g. 3")
    _add_slot_arguments(promote)
    promote.add_argument("--expect", metavar="VERSION",
                         help="the model version the slot must hold now, or 'none' for an "
                              "empty slot (default: what it holds when read)")
    promote.set_defaults(handler=promote_model)

    rollback = actions.add_parser(
        "rollback", help="put a slot back to its previous model version",
        description="Example: itsacat models rollback --slot blue --reason 'error rate up'")
    _add_slot_arguments(rollback, default_slot="blue")
    rollback.add_argument("--expect", metavar="VERSION",
                          help="the model version the slot must hold now, so that a rollback "
                               "never undoes a promotion it did not see (default: no check)")
    rollback.set_defaults(handler=rollback_slot)


def _add_json(parser, subject: str) -> None:
    parser.add_argument("--json", action="store_true", help=f"print {subject} as JSON")


def _add_slot_arguments(parser, default_slot: str | None = None) -> None:
    parser.add_argument("--slot", required=default_slot is None, default=default_slot,
                        help=f"slot to change: {' or '.join(SLOT_NAMES)}"
                             + (f" (default {default_slot})" if default_slot else ""))
    parser.add_argument("--by", default=f"{getpass.getuser()}@{socket.gethostname()}",
                        help="who acts, for the audit log (default: user@host)")
    parser.add_argument("--reason", default="", help="why, for the audit log")
    _add_json(parser, "the slot change")


def list_models(args) -> int:
    with open_registry(settings_from(args)) as registry:
        versions = registry.list_versions(args.limit)
        slots = {name: registry.slot_state(name).version_id for name in SLOT_NAMES}
    if args.json:
        print_json({"slots": slots, "model_versions": [v.to_json() for v in versions]})
        return 0
    serving = _slots_by_version(slots)
    print_table(["VERSION", "SLOT", "SOURCE", "RUN", "TEST ACC", "SHA256", "CREATED"],
                [[version.id, serving.get(version.id), version.source, version.run_id,
                  version.test_accuracy, version.artifact_sha256[:12], version.created_at]
                 for version in versions])
    return 0


def show_model(args) -> int:
    with open_registry(settings_from(args)) as registry:
        version = registry.get_version(parse_version_id(args.version))
        slots = {name: registry.slot_state(name).version_id for name in SLOT_NAMES}
    in_slots = [name for name, held in slots.items() if held == version.id]
    if args.json:
        print_json(version.to_json() | {"slots": in_slots})
        return 0
    print_table(["FIELD", "VALUE"], [
        ["version", version.id], ["slots", ", ".join(in_slots) or None],
        ["source", version.source], ["run", version.run_id],
        ["dataset digest", version.dataset_digest],
        ["network", "-".join(str(n) for n in version.spec["neurons"].values())],
        ["activations", ", ".join(version.spec["activations"].values())],
        ["classes", ", ".join(version.class_names)],
        ["artifact sha256", version.artifact_sha256], ["created", version.created_at]])
    print_metrics(version.metrics)
    return 0


def register_model(args) -> int:
    with open_registry(settings_from(args)) as registry:
        version = register_run(registry, args.run)
    return _report_version(version, args)


def import_model(args) -> int:
    class_names = parse_class_names(args.classes)
    with open_registry(settings_from(args)) as registry:
        version = import_reference_model(registry, args.params_h5, args.spec, class_names)
    return _report_version(version, args)


def export_model(args) -> int:
    version_id = parse_version_id(args.version)
    with open_registry(settings_from(args)) as registry:
        folder = export_reference_model(registry, version_id, args.folder)
    print(f"exported model version {version_id} to {folder}")
    return 0


def promote_model(args) -> int:
    version_id = parse_version_id(args.version)
    with open_registry(settings_from(args)) as registry:
        if args.expect is None:
            expected = registry.slot_state(args.slot).version_id
        elif args.expect.lower() == "none":
            expected = None
        else:
            expected = parse_version_id(args.expect)
        change = registry.promote(version_id, args.slot, expected=expected, by=args.by,
                                  reason=args.reason)
    return _report_change(change, args)


def rollback_slot(args) -> int:
    expected = ANY_VERSION
    if args.expect is not None:
        expected = None if args.expect.lower() == "none" else parse_version_id(args.expect)
    with open_registry(settings_from(args)) as registry:
        change = registry.rollback(args.slot, by=args.by, reason=args.reason,
                                   expected=expected)
    return _report_change(change, args)


def _slots_by_version(slots: dict[str, int | None]) -> dict[int, str]:
    serving: dict[int, str] = {}
    for name, version_id in slots.items():
        if version_id is not None:
            serving[version_id] = ", ".join(filter(None, (serving.get(version_id), name)))
    return serving


def _report_version(version: ModelVersion, args) -> int:
    if args.json:
        print_json(version.to_json())
    else:
        print(f"registered model version {version.id} (sha256 {version.artifact_sha256[:12]}"
              f", source {version.source}, run {version.run_id or '-'})")
    return 0


def _report_change(change: SlotChange, args) -> int:
    if args.json:
        print_json(change.to_json())
    else:
        before = "empty" if change.from_version_id is None else change.from_version_id
        print(f"slot {change.slot}: {before} -> {change.to_version_id} "
              f"({change.action.value} by {change.by}, generation {change.generation})")
    return 0
