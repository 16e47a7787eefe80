"""The engine interface: how a run executes one epoch of the same mathematics.

An engine receives the weights an epoch starts from and returns the weights it ends with; the
run loop around it (`itsacat.training.run`) owns everything else: epochs, early stopping,
checkpoints, results. Engines register themselves in `ENGINES` by name.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from itsacat.errors import ItsacatError
from itsacat.nn import NetworkSpec, Parameters


@dataclass
class EpochResult:
    """The outcome of one epoch: the next weights, the epoch's cost (as its strategy defines
    it) and engine-specific counters that the run keeps per epoch (invocations, retries…)."""

    params: Parameters
    cost: float
    stats: dict[str, Any] = field(default_factory=dict)


class Engine(Protocol):
    """Runs epochs. `X` is `(n_x, m)` (see `Split.X`), `Y` is `(1, m)`."""

    name: str

    def run_epoch(self, params: Parameters, X: np.ndarray, Y: np.ndarray, spec: NetworkSpec,
                  epoch: int) -> EpochResult: ...

    def close(self) -> None: ...


ENGINES: dict[str, Callable[..., Engine]] = {}


def register_engine(name: str):
    """Class decorator that makes an engine available to `create_engine` and `--engine`."""
    def decorate(factory):
        ENGINES[name] = factory
        return factory
    return decorate


def create_engine(name: str, **options: Any) -> Engine:
    """Build the engine called `name` with engine-specific `options`."""
    # Engines with optional dependencies register on import; importing here keeps
    # `itsacat --help` fast and lets the vectorized engine run without them.
    import itsacat.training.vectorized  # noqa: F401
    for module in ("itsacat.serverless.engine", "itsacat.training.torch_engine"):
        with contextlib.suppress(ImportError):
            importlib.import_module(module)

    if name not in ENGINES:
        raise ItsacatError("unknown_engine", f"engine {name!r} is not available; choose one of "
                           f"{', '.join(sorted(ENGINES))}")
    return ENGINES[name](**options)
