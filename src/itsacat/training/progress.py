"""The one place that owns progress output while a run trains.

On a terminal it draws a progress bar (epoch, cost, elapsed, ETA and any engine rate such as
invocations/s); elsewhere (CI, pipes, logs) it logs one line per `log_every` epochs.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

log = logging.getLogger("itsacat.training")


class ProgressDisplay:
    """A `RunObserver` that shows how far a run has come."""

    def __init__(self, total_epochs: int, console: Console | None = None, log_every: int = 100):
        self.total_epochs = total_epochs
        self.console = console or Console(stderr=True)
        self.log_every = log_every
        self.progress: Progress | None = None
        self.task = None
        self.first_epoch = 0

    def run_started(self, run_id, spec, dataset, engine, folder: Path, resumed: bool) -> None:
        verb = "resuming" if resumed else "training"
        log.info("run %s: %s %s on %s (%d train, %d test images), engine %s, strategy %s",
                 run_id, verb, "-".join(map(str, spec.neurons)), dataset.source,
                 dataset.train.m, dataset.test.m, engine, spec.strategy)
        if not self.console.is_terminal:
            return
        self.progress = Progress(
            TextColumn("epoch"), MofNCompleteColumn(), BarColumn(),
            TextColumn("cost {task.fields[cost]}"), TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=self.console, transient=False)
        self.progress.start()
        self.task = self.progress.add_task("train", total=self.total_epochs, cost="…", rate="")

    def epoch_finished(self, run_id, epoch: int, cost: float, stats: dict[str, Any],
                       elapsed: float) -> None:
        rate = _rate_text(stats)
        if self.progress is not None:
            self.progress.update(self.task, completed=epoch + 1, cost=f"{cost:.6f}", rate=rate)
        elif (epoch + 1) % self.log_every == 0:
            log.info("run %s: epoch %d cost %.6f %s elapsed %.1fs", run_id, epoch, cost, rate,
                     elapsed)

    def run_finished(self, result) -> None:
        self._stop()

    def run_stopped(self, run_id, status: str, message: str) -> None:
        self._stop()

    def _stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _rate_text(stats: dict[str, Any]) -> str:
    if "invocations" in stats and stats.get("seconds"):
        return f"{stats['invocations'] / stats['seconds']:,.0f} invocations/s"
    return ""


class _CurrentStderrHandler(logging.StreamHandler):
    """A handler that writes to whatever `sys.stderr` is at each record, so that a command
    run in-process (tests, embedding) never keeps a stream that was swapped and closed."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def configure_logging(verbose: bool = False) -> None:
    """Send itsacat's log lines to stderr, at debug level with `verbose`."""
    handler = _CurrentStderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                           "%H:%M:%S"))
    root = logging.getLogger("itsacat")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
