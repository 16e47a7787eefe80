"""Recording a run in the registry while it trains: a `RunObserver` for `itsacat.training`.

Epoch costs are written in batches, every `flush_epochs` epochs or `flush_seconds` seconds,
whichever comes first, so that a fast engine is not slowed by a transaction per epoch. A
background thread beats the run's heartbeat meanwhile, so that a long epoch does not look
like a dead process. A run killed without warning loses at most one batch of its recorded
cost curve (its checkpoint in the run folder is unaffected), and the registry marks it
interrupted the next time it is opened.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from itsacat import __version__
from itsacat.registry.schema import RunStatus
from itsacat.registry.store import Registry

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30.0


class RegistryRecorder:
    """Keeps the registry's record of one run up to date as the run loop reports it."""

    def __init__(self, registry: Registry, flush_epochs: int = 100, flush_seconds: float = 5.0,
                 heartbeat_seconds: float = HEARTBEAT_SECONDS):
        self.registry = registry
        self.flush_epochs = flush_epochs
        self.flush_seconds = flush_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.first_pending: int | None = None  # the epoch of pending[0]
        self.pending: list[float] = []
        self.elapsed = 0.0
        self.last_flush = time.monotonic()
        self._stop_beating = threading.Event()
        self._heart: threading.Thread | None = None

    def run_started(self, run_id: str, spec, dataset, engine: str, folder: Path,
                    resumed: bool) -> None:
        self.registry.start_run(run_id, spec=spec.to_json(), folder=Path(folder).absolute(),
                                dataset_digest=dataset.digest, dataset_source=dataset.source,
                                engine=engine, code_version=__version__)
        self._heart = threading.Thread(target=self._beat, args=(run_id,), daemon=True,
                                       name=f"heartbeat-{run_id}")
        self._heart.start()

    def epoch_finished(self, run_id: str, epoch: int, cost: float, stats: dict[str, Any],
                       elapsed: float) -> None:
        if self.first_pending is None:
            self.first_pending = epoch
        self.pending.append(cost)
        self.elapsed = elapsed
        if (len(self.pending) >= self.flush_epochs
                or time.monotonic() - self.last_flush >= self.flush_seconds):
            self._flush(run_id)

    def run_finished(self, result) -> None:
        self._stop_heart()
        self._flush(result.run_id)
        self.registry.finish_run(
            result.run_id, metrics=result.results["metrics"], training_seconds=result.elapsed,
            stopped_early=result.stopped_early, epochs_completed=len(result.costs),
            final_cost=result.costs[-1] if result.costs else None)

    def run_stopped(self, run_id: str, status: str, message: str) -> None:
        self._stop_heart()
        self._flush(run_id)
        self.registry.stop_run(run_id, RunStatus(status), message)

    def _flush(self, run_id: str) -> None:
        if self.first_pending is not None:
            self.registry.record_epochs(run_id, self.first_pending, self.pending, self.elapsed)
        self.first_pending, self.pending = None, []
        self.last_flush = time.monotonic()

    def _beat(self, run_id: str) -> None:
        while not self._stop_beating.wait(self.heartbeat_seconds):
            try:
                self.registry.beat(run_id)
            except Exception:  # a missed beat must not stop training; the next one may pass
                log.warning("run %s: could not record a heartbeat", run_id, exc_info=True)

    def _stop_heart(self) -> None:
        self._stop_beating.set()
        if self._heart is not None:
            self._heart.join()
