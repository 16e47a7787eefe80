"""The run loop: epochs, early stopping, checkpoints, evaluation and the run folder.

A run folder holds what the reference design wrote to S3, plus what itsacat adds:

    results.json     {"Start", "End", "epoch0": {"cost": …}, …} and "run", "metrics"
    params.h5        W1…WL, b1…bL
    parameters.json  the network spec the run used
    classes.json     the data set's class names
    checkpoint.npz   the latest checkpoint, removed when the run completes
    insight.json     per-layer weight and gradient norms and activations, sampled epochs

Epochs are numbered from 0, as the reference `results.json` numbers them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import signal
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from itsacat import __version__
from itsacat.data import Dataset
from itsacat.errors import ItsacatError
from itsacat.nn import Model, NetworkSpec, Parameters, initialize
from itsacat.nn.insight import InsightLog
from itsacat.nn.io import save_model, write_json_atomic
from itsacat.report.metrics import Metrics, evaluate_predictions
from itsacat.training.engine import Engine

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.npz"
# A cost this many times above the first epoch's means the steps overshoot: an untrained
# network's cross-entropy is near ln 2, and no working learning rate multiplies it by 100.
DIVERGENCE_FACTOR = 100.0
RESULTS_FILE = "results.json"


class TrainingError(ItsacatError):
    """A run that cannot start, resume or continue."""


@dataclass
class RunState:
    """The state of a run: the weights, the epochs done and their costs and counters."""

    run_id: str
    params: Parameters
    dataset_digest: str
    next_epoch: int = 0
    costs: list[float] = field(default_factory=list)
    epoch_stats: list[dict[str, Any]] = field(default_factory=list)
    started_at: str = ""
    elapsed: float = 0.0  # seconds spent in epochs, summed over every resumption


@dataclass
class RunResult:
    """A finished run: its folder, its final model, its metrics and how it ended."""

    run_id: str
    folder: Path
    model: Model
    costs: list[float]
    train_metrics: Metrics
    test_metrics: Metrics
    stopped_early: bool
    elapsed: float
    results: dict[str, Any]


class RunObserver(Protocol):
    """Receives the events of a run; the registry and the progress display implement it."""

    def run_started(self, run_id: str, spec: NetworkSpec, dataset: Dataset, engine: str,
                    folder: Path, resumed: bool) -> None: ...

    def epoch_finished(self, run_id: str, epoch: int, cost: float, stats: dict[str, Any],
                       elapsed: float) -> None: ...

    def run_finished(self, result: RunResult) -> None: ...

    def run_stopped(self, run_id: str, status: str, message: str) -> None: ...


def train(dataset: Dataset, spec: NetworkSpec, engine: Engine, folder: str | Path,
          observers: list[RunObserver] = (), checkpoint_every: int = 100,
          resume: bool = False) -> RunResult:
    """Train `spec` on `dataset` with `engine`, writing the run folder as it goes.

    With `resume`, continue from the folder's checkpoint; the data set and the spec must be
    the ones the checkpoint was made with. Raises `TrainingError` for a run that cannot start
    or diverges; Ctrl-C and SIGTERM stop the run with a checkpoint so that it can resume.
    """
    folder = Path(folder)
    X, Y = dataset.train.X(spec.dtype), dataset.train.Y(spec.dtype)
    state = (load_checkpoint(folder, spec, dataset) if resume
             else start_run(folder, spec, dataset, X.shape[0]))
    for observer in observers:
        observer.run_started(state.run_id, spec, dataset, engine.name, folder, resume)

    try:
        with _sigterm_as_interrupt():
            stopped_early = run_epochs(state, X, Y, spec, engine, folder, observers,
                                       checkpoint_every)
    except KeyboardInterrupt:
        save_checkpoint(folder, state, spec)
        _notify_stopped(observers, state.run_id, "interrupted",
                        f"interrupted after {state.next_epoch} epochs; resume with "
                        f"--resume {folder}")
        raise
    except Exception as error:
        # An engine that lost its backend (a parameter store that went away) marks the error
        # resumable: the last finished epoch is good, so keep it for --resume.
        if getattr(error, "resumable", False):
            save_checkpoint(folder, state, spec)
        _notify_stopped(observers, state.run_id, "failed", str(error))
        raise
    finally:
        engine.close()

    result = finish_run(state, dataset, spec, engine, folder, stopped_early)
    for observer in observers:
        observer.run_finished(result)
    return result


def start_run(folder: Path, spec: NetworkSpec, dataset: Dataset, n_x: int) -> RunState:
    """Create the run folder and the initial weights."""
    if (folder / CHECKPOINT_FILE).exists() or (folder / RESULTS_FILE).exists():
        raise TrainingError("run_exists", f"run folder {folder} already contains a run; pass "
                            f"--resume {folder} to continue it, or choose another --out")
    folder.mkdir(parents=True, exist_ok=True)
    return RunState(run_id=uuid.uuid4().hex[:12], params=initialize(spec, n_x),
                    dataset_digest=dataset.digest, started_at=_now())


def run_epochs(state: RunState, X: np.ndarray, Y: np.ndarray, spec: NetworkSpec,
               engine: Engine, folder: Path, observers, checkpoint_every: int) -> bool:
    """Run epochs until the last one or until the cost reaches the threshold.

    Returns True when training stopped early at the threshold.
    """
    insight = InsightLog.resume(folder, spec, X, Y, state.next_epoch, state.params)
    while state.next_epoch < spec.epochs:
        epoch = state.next_epoch
        started = time.perf_counter()
        result = engine.run_epoch(state.params, X, Y, spec, epoch)
        check_divergence(result.params, result.cost, state.costs[:1], epoch, spec)

        state.params = result.params
        state.costs.append(result.cost)
        state.epoch_stats.append(result.stats)
        state.elapsed += time.perf_counter() - started
        state.next_epoch = epoch + 1
        for observer in observers:
            observer.epoch_finished(state.run_id, epoch, result.cost, result.stats,
                                    state.elapsed)

        # Before the checkpoint, so that a checkpoint never runs ahead of insight.json.
        insight.record_due(epoch, state.params, stopping=result.cost <= spec.threshold)
        if state.next_epoch % checkpoint_every == 0:
            save_checkpoint(folder, state, spec)
        if result.cost <= spec.threshold:
            log.info("run %s: cost %.6f reached the threshold %g at epoch %d", state.run_id,
                     result.cost, spec.threshold, epoch)
            return True
    return False


def check_divergence(params: Parameters, epoch_cost: float, first_cost: list[float],
                     epoch: int, spec: NetworkSpec) -> None:
    """Stop a run whose cost exploded or whose weights stopped being finite, before they
    are saved."""
    if not np.isfinite(epoch_cost) or not params.is_finite():
        problem = "the cost" if not np.isfinite(epoch_cost) else "the weights"
        problem += " became infinite or NaN"
    elif first_cost and epoch_cost > DIVERGENCE_FACTOR * first_cost[0]:
        problem = (f"the cost rose to {epoch_cost:.4g}, over {DIVERGENCE_FACTOR:g} times the "
                   f"first epoch's {first_cost[0]:.4g}")
    else:
        return
    raise TrainingError("diverged", f"training diverged at epoch {epoch}: {problem} with "
                        f"learning_rate {spec.learning_rate}; lower the learning rate")


def finish_run(state: RunState, dataset: Dataset, spec: NetworkSpec, engine: Engine,
               folder: Path, stopped_early: bool) -> RunResult:
    """Evaluate the final model and write params.h5, parameters.json and results.json."""
    model = Model(spec, state.params, dataset.class_names)
    train_metrics = evaluate_model(model, dataset.train.X(spec.dtype), dataset.train.y)
    test_metrics = evaluate_model(model, dataset.test.X(spec.dtype), dataset.test.y)
    save_model(model, folder)

    results: dict[str, Any] = {"Start": state.started_at, "End": _now()}
    for epoch, epoch_cost in enumerate(state.costs):
        results[f"epoch{epoch}"] = {"cost": epoch_cost}
    results["run"] = {
        "id": state.run_id,
        "engine": engine.name,
        "strategy": spec.strategy,
        "seed": spec.seed,
        "dtype": spec.dtype,
        "dataset": dataset.source,
        "dataset_digest": dataset.digest,
        "epochs_completed": len(state.costs),
        "stopped_early": stopped_early,
        "final_cost": state.costs[-1] if state.costs else None,
        "training_seconds": state.elapsed,
        "code_version": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    results["metrics"] = {"train": train_metrics.to_json(), "test": test_metrics.to_json()}
    if any(state.epoch_stats):
        results["epoch_stats"] = state.epoch_stats
    write_json_atomic(folder / RESULTS_FILE, results)
    (folder / CHECKPOINT_FILE).unlink(missing_ok=True)

    return RunResult(state.run_id, folder, model, state.costs, train_metrics, test_metrics,
                     stopped_early, state.elapsed, results)


def evaluate_model(model: Model, X: np.ndarray, labels: np.ndarray) -> Metrics:
    """Predict every column of X and compare with `labels`."""
    return evaluate_predictions(model.predict(X), labels)


def save_checkpoint(folder: Path, state: RunState, spec: NetworkSpec) -> None:
    """Write the run's state atomically so that `--resume` continues exactly from it."""
    arrays = {f"W{l}": W for l, W in state.params.W.items()}
    arrays |= {f"b{l}": b for l, b in state.params.b.items()}
    meta = {"run_id": state.run_id, "next_epoch": state.next_epoch, "costs": state.costs,
            "epoch_stats": state.epoch_stats, "started_at": state.started_at,
            "elapsed": state.elapsed, "spec": spec.to_json(),
            "dataset_digest": state.dataset_digest}
    temporary = folder / f".{CHECKPOINT_FILE}.tmp-{os.getpid()}.npz"
    np.savez(temporary, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
             **arrays)
    os.replace(temporary, folder / CHECKPOINT_FILE)


def load_checkpoint(folder: Path, spec: NetworkSpec, dataset: Dataset) -> RunState:
    """Read the checkpoint of an interrupted run and check it matches `spec` and `dataset`."""
    path = folder / CHECKPOINT_FILE
    if not path.exists():
        hint = (" the run already completed" if (folder / RESULTS_FILE).exists()
                else " no run was started there")
        raise TrainingError("no_checkpoint", f"cannot resume {folder}: no {CHECKPOINT_FILE};"
                            f"{hint}")
    meta = _read_meta(folder)
    if meta["dataset_digest"] != dataset.digest:
        raise TrainingError("resume_mismatch", f"cannot resume {folder}: it was trained on a "
                            f"data set with digest {meta['dataset_digest'][:12]}, not "
                            f"{dataset.source} ({dataset.digest[:12]}); pass the same --data")
    if _comparable(meta["spec"]) != _comparable(spec.to_json()):
        raise TrainingError("resume_mismatch", f"cannot resume {folder}: the network spec "
                            "differs from the one the run started with; resume without "
                            "changing --params, --strategy, --seed or the spec file")
    with np.load(path) as archive:
        layers = spec.layers
        params = Parameters({l: archive[f"W{l}"] for l in range(1, layers + 1)},
                            {l: archive[f"b{l}"] for l in range(1, layers + 1)})
    return RunState(meta["run_id"], params, meta["dataset_digest"], meta["next_epoch"],
                    list(meta["costs"]), list(meta["epoch_stats"]), meta["started_at"],
                    meta["elapsed"])


def folder_run_id(folder: Path) -> str | None:
    """Return the id of the run in `folder` from its results or checkpoint, or None."""
    results = folder / RESULTS_FILE
    if results.exists():
        try:
            return json.loads(results.read_text(encoding="utf-8"))["run"]["id"]
        except (ValueError, KeyError, TypeError):
            return None
    if (folder / CHECKPOINT_FILE).exists():
        return _read_meta(folder).get("run_id")
    return None


def checkpoint_spec(folder: Path) -> dict[str, Any]:
    """Return the network spec, as JSON, that the interrupted run in `folder` started with."""
    if not (folder / CHECKPOINT_FILE).exists():
        raise TrainingError("no_checkpoint", f"cannot resume {folder}: no {CHECKPOINT_FILE}; "
                            "pass the folder of an interrupted run")
    return _read_meta(folder)["spec"]


def _read_meta(folder: Path) -> dict[str, Any]:
    path = folder / CHECKPOINT_FILE
    try:
        with np.load(path) as archive:
            return json.loads(archive["meta"].tobytes().decode())
    except (OSError, ValueError, KeyError) as error:
        raise TrainingError("bad_checkpoint", f"checkpoint {path} is unreadable ({error}); "
                            "start a new run") from None


def _comparable(spec_json: dict[str, Any]) -> dict[str, Any]:
    # More epochs may be asked for on resume; everything else must match.
    return {key: value for key, value in spec_json.items() if key != "epochs"}


def _notify_stopped(observers, run_id: str, status: str, message: str) -> None:
    for observer in observers:
        observer.run_stopped(run_id, status, message)


class _sigterm_as_interrupt:
    """Turn SIGTERM into KeyboardInterrupt while training, so both leave a checkpoint."""

    def __enter__(self):
        self.previous = None
        # signal.signal raises ValueError outside the main thread; leave signals alone there.
        with contextlib.suppress(ValueError):
            self.previous = signal.signal(signal.SIGTERM, self._raise)
        return self

    def __exit__(self, *exc_info):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)

    @staticmethod
    def _raise(signum, frame):
        raise KeyboardInterrupt


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
