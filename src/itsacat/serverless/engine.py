"""The serverless engine: each epoch runs as a chain of launch, trainer and neuron invocations.

In the reference design the launcher owned the epoch loop: it started epoch after epoch,
each closing epoch started the next, and the last one wrote the results. Here the run loop
(`itsacat.training.run`) owns epochs, the threshold, checkpoints and results.json, so
`run_epoch` invokes `launch` with `last_epoch` equal to the epoch: launch runs and closes
exactly that epoch, records its cost in the store, and stops. `run_chain` instead lets
launch chain several epochs itself, as the reference did; both give the same weights.

The engine plays the part of the reference's upload: it stores the spec and the train data
in the parameter store once. It also stores the weights an epoch starts from whenever the
store does not contain them yet: at the first epoch, and after `--resume`, which restores
them from the run's checkpoint.
"""

from __future__ import annotations

import logging

import numpy as np
from threadpoolctl import ThreadpoolController

from itsacat.nn import NetworkSpec, Parameters
from itsacat.serverless.functions import forget_run, read_parameters, write_parameters
from itsacat.serverless.runtime import Faults, InvocationError, Runtime, RuntimeStats
from itsacat.serverless.store import ParamStoreError, open_store
from itsacat.settings import Settings
from itsacat.training.engine import EpochResult, register_engine

log = logging.getLogger(__name__)

_BLAS: list[ThreadpoolController] = []


def _blas_controller() -> ThreadpoolController:
    # Finding the loaded BLAS libraries takes milliseconds, so do it once per process.
    if not _BLAS:
        _BLAS.append(ThreadpoolController())
    return _BLAS[0]


@register_engine("serverless")
class ServerlessEngine:
    """Runs epochs as function invocations on `executor`, sharing a parameter store.

    `param_store` is "memory" or "redis://host:port/db" (default: `ITSACAT_PARAM_STORE`);
    `workers` sizes the thread pool; `timeout` (seconds) and `max_attempts` bound each
    invocation; `faults` is the runtime's test hook for disturbed delivery.
    """

    name = "serverless"

    def __init__(self, executor: str = "inline", param_store: str | None = None,
                 workers: int | None = None, timeout: float = 60.0, max_attempts: int = 5,
                 faults: Faults | None = None, ray_address: str | None = None):
        self.store = open_store(param_store or Settings.from_env().param_store)
        try:
            self.runtime = Runtime(self.store, executor, workers=workers, timeout=timeout,
                                   max_attempts=max_attempts, faults=faults,
                                   ray_address=ray_address)
        except Exception:
            self.store.close()
            raise
        self._uploaded: tuple[int, int, NetworkSpec] | None = None
        self._stored: Parameters | None = None  # the weights stored for `_stored_epoch`
        self._stored_epoch = -1

    def run_epoch(self, params: Parameters, X: np.ndarray, Y: np.ndarray, spec: NetworkSpec,
                  epoch: int) -> EpochResult:
        """Run epoch `epoch` from `params`; return the next weights, the cost and the
        invocation counters (invocations, retries, duplicates, bytes, seconds)."""
        next_params, costs, stats = self.run_chain(params, X, Y, spec, epoch, epoch)
        return EpochResult(next_params, costs[0], stats.to_json())

    def run_chain(self, params: Parameters, X: np.ndarray, Y: np.ndarray, spec: NetworkSpec,
                  first_epoch: int, last_epoch: int
                  ) -> tuple[Parameters, list[float], RuntimeStats]:
        """Let launch chain epochs `first_epoch`…`last_epoch` itself, stopping early at the
        threshold; return the final weights, each epoch's cost and the counters."""
        first_run = self._upload(X, Y, spec)
        if params is not self._stored or first_epoch != self._stored_epoch:
            write_parameters(self.store, f"weights/e{first_epoch}", params)

        action = "initialise" if first_run else "start_epoch"
        self.runtime.invoke("launch", {"action": action, "epoch": first_epoch,
                                       "last_epoch": last_epoch})
        # A neuron's products are matrix-vector products, which a second BLAS thread only
        # slows down: on a busy two-core machine it made epochs up to 20 times slower.
        # Parallelism comes from the executor instead, as one invocation per CPU.
        with _blas_controller().limit(limits=1, user_api="blas"):
            stats = self.runtime.run_until_idle()

        results = self.store.get_json("results") or {}
        closed = results.get("last_epoch", -1)
        if results.get("status") != "completed" or closed < first_epoch:
            # Every chain ended without closing the epoch: a function stopped invoking.
            raise InvocationError("chain_incomplete", f"epoch {first_epoch} ended without "
                                  f"being closed (the store's results are {results}); this is "
                                  "a bug in the serverless functions, please report it")
        costs = [self.store.get_json(f"epochs/{epoch}/result")["cost"]
                 for epoch in range(first_epoch, closed + 1)]
        next_params = read_parameters(self.store, f"weights/e{closed + 1}", spec)
        self._clean(first_epoch, closed)
        self._stored, self._stored_epoch = next_params, closed + 1
        return next_params, costs, stats

    def close(self) -> None:
        """Stop the executor and delete the run's namespace from the store."""
        self.runtime.close()
        try:
            self.store.clear()
        except ParamStoreError as error:
            log.warning("could not clean up namespace %s: %s", self.store.namespace,
                        error.message)
        forget_run(self.store)
        self.store.close()

    def _upload(self, X: np.ndarray, Y: np.ndarray, spec: NetworkSpec) -> bool:
        """Store the spec and the train data unless this very data is stored; return True
        when they were stored now."""
        key = (id(X), id(Y), spec)
        if self._uploaded == key:
            return False
        if self._uploaded is not None:
            # Store handles may cache the data and minibatch inputs they read, keyed by name.
            raise ValueError("a serverless engine trains on the X and Y arrays and the spec "
                             "of its first epoch; pass the same objects to every run_epoch, "
                             "or create a new engine for other data")
        self.store.put_json("spec", spec.to_json())
        self.store.put_array("data/X", X.T)  # (m, n_x): one example per row
        self.store.put_array("data/Y", Y)
        self._uploaded = key
        return True

    def _clean(self, first_epoch: int, last_epoch: int) -> None:
        # Every invocation has finished, so no late copy can read these keys any more.
        for epoch in range(first_epoch, last_epoch + 1):
            self.store.delete_prefix(f"e{epoch}/")
            self.store.delete_prefix(f"weights/e{epoch}/")
            self.store.delete_prefix(f"epochs/{epoch}/")

    def __repr__(self) -> str:
        return (f"ServerlessEngine(executor={self.runtime.executor_name!r}, "
                f"param_store={self.store.url!r}, namespace={self.store.namespace!r})")

