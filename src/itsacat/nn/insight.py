"""Layer and neuron insight: how the weights, gradients and activations of each layer evolve.

`inspect_layers` measures one set of parameters on one batch. For each layer it returns the
norm of `W[l]`, the norm of the full-batch gradient `dW[l]` and percentiles of the
activations `A[l]`. For rectifier layers it also returns the fraction of neurons that never
fire, those with `Z[l] <= 0` for every example.

`InsightLog` keeps those measurements for a run in `insight.json`, sampled every
`sampling_interval(epochs)` epochs plus the first and the last, so that it costs a few
percent of training time at most. The file is rewritten atomically after every snapshot. On
resume, snapshots past the checkpoint are dropped and recorded again, so an interrupted and
resumed run ends with the same file as an uninterrupted one.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from itsacat.nn.network import Parameters, backward, cost, forward
from itsacat.nn.spec import NetworkSpec

INSIGHT_FILE = "insight.json"
PERCENTILES = (0, 5, 25, 50, 75, 95, 100)
RECTIFIERS = ("relu", "leaky_relu")  # activations whose neurons are silent for Z <= 0
SNAPSHOTS_PER_RUN = 50

Array = np.ndarray


@dataclass(frozen=True)
class LayerInsight:
    """Measurements of one layer l for one set of parameters on one batch."""

    layer: int
    activation: str
    neurons: int
    weight_norm: float  # Frobenius norm of W[l]
    gradient_norm: float  # Frobenius norm of dW[l], the cost's gradient over the whole batch
    activation_percentiles: list[float]  # of every entry of A[l], at PERCENTILES
    dead_fraction: float | None  # share of neurons with Z[l] <= 0 on every example; None
    # for activations that are not rectifiers


def inspect_layers(params: Parameters, X: Array, Y: Array, activations: tuple[str, ...]
                   ) -> tuple[float, list[LayerInsight]]:
    """Measure every layer of `params` on inputs `X` `(n_x, m)` with labels `Y` `(1, m)`.

    Returns the cost on the batch and one `LayerInsight` per layer, first layer first. The
    gradients come from one forward and one backward pass over the whole batch.
    """
    AL, caches = forward(params, X, activations)
    grads = backward(params, caches, AL, Y, activations)
    outputs = [cache.A_prev for cache in caches[1:]] + [AL]  # A[l] for l = 1…L

    layers = []
    for l in range(1, params.layers + 1):
        Z, A = caches[l - 1].Z, outputs[l - 1]
        activation = activations[l - 1]
        dead = (float(np.mean(np.all(Z <= 0, axis=1))) if activation in RECTIFIERS
                else None)
        layers.append(LayerInsight(
            layer=l, activation=activation, neurons=Z.shape[0],
            weight_norm=frobenius_norm(params.W[l]),
            gradient_norm=frobenius_norm(grads.dW[l]),
            activation_percentiles=[float(value) for value in np.percentile(A, PERCENTILES)],
            dead_fraction=dead))
    return cost(caches[-1].Z, Y), layers


def frobenius_norm(array: Array) -> float:
    """Return sqrt(sum of squares) of every entry of `array`."""
    # np.linalg.norm goes through BLAS dot. On a 5×12288 matrix it took about 1 ms when other
    # processes kept the two cores busy, and this plain sum about 0.05 ms.
    return float(np.sqrt(np.sum(array * array)))


def sampling_interval(epochs: int) -> int:
    """Return how many epochs apart snapshots are taken, for a run of `epochs` epochs."""
    return max(1, epochs // SNAPSHOTS_PER_RUN)


def is_snapshot_epoch(epoch: int, epochs: int) -> bool:
    """Tell whether the 0-based `epoch` of a run of `epochs` epochs gets a snapshot.

    The first and last epochs always do, and every `sampling_interval(epochs)`-th in between.
    A run that stops early at its threshold also records its final epoch.
    """
    return (epoch == 0 or epoch == epochs - 1
            or (epoch + 1) % sampling_interval(epochs) == 0)


class InsightLog:
    """The snapshots of one run, kept in `folder/insight.json`.

    The file holds `{"percentiles": [...], "snapshots": [{"epoch", "cost", "layers"}]}`, where
    each snapshot measures the weights at the end of `epoch` on the whole training set
    `X` `(n_x, m)`, `Y` `(1, m)`.
    """

    def __init__(self, folder: str | Path, spec: NetworkSpec, X: Array, Y: Array):
        self.path = Path(folder) / INSIGHT_FILE
        self.spec, self.X, self.Y = spec, X, Y
        self.snapshots: list[dict[str, Any]] = []
        self.encoded: list[str] = []  # each snapshot as JSON, so a write encodes only one

    @classmethod
    def resume(cls, folder: str | Path, spec: NetworkSpec, X: Array, Y: Array,
               next_epoch: int, params: Parameters) -> InsightLog:
        """Open the log of a run that continues at `next_epoch` with weights `params`.

        Snapshots at `next_epoch` or later were taken after the checkpoint the run resumes
        from, so they are dropped and the resumed run takes them again. A new run passes
        `next_epoch` 0, which drops whatever a crashed earlier attempt left. An interrupt
        between the end of an epoch and its snapshot leaves a checkpoint just past a missing
        snapshot; `params` are the weights of that epoch, so it is taken here.
        """
        log = cls(folder, spec, X, Y)
        if next_epoch == 0:
            return log
        if log.path.exists():
            snapshots = json.loads(log.path.read_text(encoding="utf-8"))["snapshots"]
            log.snapshots = [item for item in snapshots if item["epoch"] < next_epoch]
            log.encoded = [json.dumps(item) for item in log.snapshots]
        log.record_due(next_epoch - 1, params, stopping=False)
        return log

    def record_due(self, epoch: int, params: Parameters, stopping: bool) -> None:
        """Take a snapshot of `params` after `epoch` when it is a sampled epoch or the run is
        `stopping` early, unless that epoch already has one."""
        due = is_snapshot_epoch(epoch, self.spec.epochs) or stopping
        if due and not (self.snapshots and self.snapshots[-1]["epoch"] == epoch):
            self.record(epoch, params)

    def record(self, epoch: int, params: Parameters) -> None:
        """Measure `params` after `epoch` and rewrite the file with the new snapshot."""
        batch_cost, layers = inspect_layers(params, self.X, self.Y, self.spec.activations)
        snapshot = {"epoch": epoch, "cost": batch_cost,
                    "layers": [asdict(layer) for layer in layers]}
        self.snapshots.append(snapshot)
        self.encoded.append(json.dumps(snapshot))
        self._write()

    def _write(self) -> None:
        # One snapshot per line. The file is rewritten whole, so that it is never left half
        # written, but each snapshot is encoded only once.
        text = (f'{{"percentiles": {json.dumps(list(PERCENTILES))},\n"snapshots": [\n'
                + ",\n".join(self.encoded) + "\n]}\n")
        temporary = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, self.path)


def read_insight(folder: str | Path) -> dict[str, Any] | None:
    """Return the decoded `insight.json` of a run folder, or None when the run has none."""
    path = Path(folder) / INSIGHT_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
