"""Delivery speed: from a registered model version to blue serving it, with auto approval.

Starts real blue and green services (`itsacat serve`) on free ports of 127.0.0.1 against a
fresh registry in a temporary home, then delivers `--repeats` new model versions one after
another. Each delivery runs every delivery stage: release, image build (skipped after
`docker info` fails when no Docker engine runs), deploy green and wait for its reload, smoke
checks, gates, auto approval, promote blue and wait for its reload, notify. The clock starts
before the execution is created and stops once the blue service's /readyz reports the new
version.

    python bench/deliver_speed.py [--repeats 5] [--smoke-images DIR]

Figures: seconds per delivery, their median, and the median seconds of each stage. The
services check the slot every 0.2 s, so each of the two reloads waits up to one poll
interval.
"""

from __future__ import annotations

import argparse
import platform
import socket
import statistics
import tempfile
import time
from pathlib import Path

from itsacat.nn import Model, initialize, parse_spec
from itsacat.pipeline import ExecutionSettings, Executor, PipelineConfig, create_execution
from itsacat.pipeline.services import served_version
from itsacat.pipeline.stack import Stack
from itsacat.registry import ExecutionStatus, open_registry
from itsacat.settings import Settings

# The reference network's shape, with initial weights only: once the gates accept a model,
# how good it is does not change the delivery's speed.
SPEC = {"epochs": 1, "layers": 4,
        "activations": {"layer1": "relu", "layer2": "relu", "layer3": "relu",
                        "layer4": "sigmoid"},
        "neurons": {"layer1": 20, "layer2": 7, "layer3": 5, "layer4": 1},
        "learning_rate": 0.0075, "batch_size": 64, "threshold": 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoke-images", help="labeled smoke images (folder with labels.csv)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="itsacat-bench-") as folder:
        home = Path(folder) / "home"
        config = PipelineConfig().replace(
            approval="auto", services__blue_port=free_port(),
            services__green_port=free_port(), admin__port=free_port(),
            gates__min_test_accuracy=0.0, gates__smoke_images=args.smoke_images)
        with open_registry(Settings.from_env(home)) as registry, Stack(
                registry, home, config, worker=False, inbox=False, admin=False):
            totals, stages = [], {}
            for repeat in range(args.repeats):
                seconds, execution = deliver_once(registry, home, config, seed=repeat + 1)
                totals.append(seconds)
                for stage in execution.stages:
                    if stage.started_at and stage.finished_at:
                        stages.setdefault(stage.name, []).append(
                            (stage.finished_at - stage.started_at).total_seconds())
                print(f"delivery {repeat + 1}: model version {execution.model_version_id} "
                      f"served by blue after {seconds:.2f} s")

    print(f"\nmedian {statistics.median(totals):.2f} s over {len(totals)} deliveries "
          f"(min {min(totals):.2f}, max {max(totals):.2f}) on {platform.node()}, "
          f"{platform.processor() or platform.machine()}")
    for name, values in stages.items():
        print(f"  {name:<14} median {statistics.median(values):.3f} s")


def deliver_once(registry, home: Path, config: PipelineConfig, seed: int):
    """Register a model version, deliver it, and return (seconds until blue serves it, the
    finished execution)."""
    spec = parse_spec(SPEC | {"seed": seed}, "bench spec")
    version = registry.register_model(
        Model(spec, initialize(spec, 64 * 64 * 3)),
        metrics={"test": {"accuracy": 0.5 + seed / 100}}, source="import")

    started = time.perf_counter()
    execution = create_execution(registry, ExecutionSettings(
        kind="deliver", config=config, model_version_id=version.id), "bench")
    finished = Executor(registry, home).run(execution.id)
    if finished.status != ExecutionStatus.succeeded:
        raise SystemExit(f"execution {finished.id} ended {finished.status}; see itsacat "
                         f"--home {home} pipeline status {finished.id}")
    blue = config.services.url("blue")
    while served_version(blue) != version.id:
        time.sleep(0.01)
    return time.perf_counter() - started, finished


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


if __name__ == "__main__":
    main()
