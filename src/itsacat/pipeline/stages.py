"""The stages of a pipeline execution, what they share, and the three training stages.

A stage is a function `stage(context) -> outcome dict`. It passes by returning, fails by
raising `StageFailed`, is skipped by raising `StageSkipped`, and pauses the execution by
raising `AwaitingDecision`. Every stage is idempotent: run again after a crash, it finds
what its earlier attempt did (a run folder, a registered version, a slot already moved)
and finishes the job instead of doing it twice.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from itsacat.data import load_dataset
from itsacat.nn import load_spec, parse_spec
from itsacat.nn.io import load_model
from itsacat.pipeline.config import PipelineConfig
from itsacat.registry import Execution, Registry, RegistryRecorder

log = logging.getLogger(__name__)

STAGES = ("train", "evaluate", "register", "build_release", "build_image", "deploy_green",
          "verify_green", "gate", "approve", "promote_blue", "notify")
TRAINING_STAGES = ("train", "evaluate", "register")

# The reference network (12288-20-7-5-1), trained when the trigger brings no parameters.json.
DEFAULT_SPEC = {
    "epochs": 2500, "layers": 4,
    "activations": {"layer1": "relu", "layer2": "relu", "layer3": "relu", "layer4": "sigmoid"},
    "neurons": {"layer1": 20, "layer2": 7, "layer3": 5, "layer4": 1},
    "learning_rate": 0.0075, "batch_size": 64, "threshold": 0.0019,
}


class StageFailed(Exception):
    """A stage whose work failed or whose check did not hold; `reason` names which."""

    def __init__(self, reason: str, outcome: dict[str, Any] | None = None):
        super().__init__(reason)
        self.reason = reason
        self.outcome = outcome or {}


class StageSkipped(Exception):
    """A stage this execution does not need; `reason` gives the cause."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class AwaitingDecision(Exception):
    """The approve stage waits for a person's decision; the execution pauses until then."""

    def __init__(self, reason: str, outcome: dict[str, Any] | None = None):
        super().__init__(reason)
        self.reason = reason
        self.outcome = outcome or {}


@dataclass(frozen=True)
class ExecutionSettings:
    """The request behind one execution, frozen when the execution was created.

    `kind` is `full` (train a model from `data_path`, then deliver it) or `deliver` (deliver
    the model version `model_version_id` registered by hand).
    """

    kind: str
    config: PipelineConfig
    data_path: str | None = None
    params_path: str | None = None
    epochs: int | None = None
    model_version_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "config": self.config.to_json(), "data_path": self.data_path,
                "params_path": self.params_path, "epochs": self.epochs,
                "model_version_id": self.model_version_id}

    @classmethod
    def from_json(cls, document: dict[str, Any], execution_id: str) -> ExecutionSettings:
        config = PipelineConfig.from_json(document["config"],
                                          f"settings of execution {execution_id}")
        return cls(kind=document["kind"], config=config, data_path=document.get("data_path"),
                   params_path=document.get("params_path"), epochs=document.get("epochs"),
                   model_version_id=document.get("model_version_id"))


@dataclass
class StageContext:
    """The inputs of a stage: the registry, the execution, its settings, earlier outcomes."""

    registry: Registry
    home: Path
    execution: Execution
    settings: ExecutionSettings
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    @property
    def config(self) -> PipelineConfig:
        return self.settings.config

    @property
    def execution_folder(self) -> Path:
        return self.home / "executions" / self.execution.id

    def log(self, message: str) -> None:
        """Add a line to the stage's log in the registry, and to the process log."""
        self.lines.append(message)
        log.info("execution %s: %s", self.execution.id, message)

    def model_version_id(self) -> int:
        """Return the candidate's id: registered by the register stage, or given to `deliver`."""
        version_id = self.outcomes.get("register", {}).get("model_version_id")
        if version_id is None:
            version_id = self.settings.model_version_id
        if version_id is None:
            raise StageFailed("no model version to deliver: the register stage recorded none")
        return int(version_id)


def train(context: StageContext) -> dict[str, Any]:
    """Train the network on the execution's data set, recording the run in the registry."""
    from itsacat.training import create_engine
    from itsacat.training import train as train_network

    _require_full(context)
    settings, training = context.settings, context.config.training
    spec = (load_spec(settings.params_path) if settings.params_path
            else parse_spec(DEFAULT_SPEC, "default spec"))
    spec = spec.with_overrides(epochs=settings.epochs or training.epochs, seed=training.seed)
    dataset = load_dataset(settings.data_path, seed=spec.seed)

    # The stage runs again only after a crash, which leaves a partial run folder. Training
    # again from the start is simpler and safer than trusting that folder.
    folder = context.execution_folder / "run"
    if folder.exists():
        context.log(f"removing the partial run folder {folder} of an interrupted attempt")
        shutil.rmtree(folder)
    context.log(f"training {spec.layers}-layer network for up to {spec.epochs} epochs on "
                f"{dataset.source} ({dataset.train.m} train, {dataset.test.m} test pictures)")
    result = train_network(dataset, spec, create_engine(training.engine), folder,
                           observers=[RegistryRecorder(context.registry)],
                           checkpoint_every=training.checkpoint_every)
    context.log(f"run {result.run_id}: {len(result.costs)} epochs, final cost "
                f"{result.costs[-1]:.6f}, test accuracy {result.test_metrics.accuracy:.4f}")
    return {"run_id": result.run_id, "run_folder": str(folder), "epochs": len(result.costs),
            "final_cost": result.costs[-1], "dataset_digest": dataset.digest}


def evaluate(context: StageContext) -> dict[str, Any]:
    """Read the run's metrics and write its HTML report."""
    _require_full(context)
    run_outcome = context.outcomes["train"]
    run = context.registry.get_run(run_outcome["run_id"])
    if run.metrics is None:
        raise StageFailed(f"run {run.id} has no metrics; it ended {run.status}")
    test = run.metrics["test"]
    context.log(f"test accuracy {test['accuracy']:.4f}, F1 {test.get('f1', float('nan')):.4f}")

    report = _write_report(context, Path(run_outcome["run_folder"]))
    return {"metrics": run.metrics, "report": str(report) if report else None}


def register(context: StageContext) -> dict[str, Any]:
    """Register the run's model as a new model version (or find the one registered before)."""
    _require_full(context)
    run_outcome = context.outcomes["train"]
    model = load_model(run_outcome["run_folder"])
    version = context.registry.register_model(
        model, run_id=run_outcome["run_id"], dataset_digest=run_outcome["dataset_digest"],
        metrics=context.outcomes["evaluate"]["metrics"])
    context.registry.update_execution(context.execution.id, model_version_id=version.id)
    context.log(f"registered model version {version.id} (sha256 {version.artifact_sha256[:12]})")
    return {"model_version_id": version.id, "artifact_sha256": version.artifact_sha256}


def _require_full(context: StageContext) -> None:
    if context.settings.kind != "full":
        raise StageSkipped(f"model version {context.settings.model_version_id} was registered "
                           "by hand; this execution only delivers it")


def _write_report(context: StageContext, run_folder: Path) -> Path | None:
    """Write the run's report; a report that cannot be written is logged, not fatal."""
    if not context.config.training.report:
        context.log("no report: training.report is off")
        return None
    try:
        from itsacat.report import write_report
    except ImportError:
        context.log("no report: itsacat.report.write_report is not available")
        return None
    images = context.config.gates.smoke_images
    try:
        return write_report(run_folder, context.settings.data_path,
                            images_dir=images).absolute()
    except Exception as error:  # the report documents the run; the release does not need it
        context.log(f"no report: writing it failed: {type(error).__name__}: {error}")
        return None
