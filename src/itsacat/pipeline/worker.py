"""The pipeline worker: finds executions that need work and runs them, one at a time.

An execution needs work when it is pending, running without a live worker (its worker
crashed), interrupted, or awaiting approval with a decision recorded. Several workers may
share one registry: the execution lease lets only one of them run each execution.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from itsacat.pipeline import state
from itsacat.pipeline.executor import Executor, StageObserver
from itsacat.registry import ExecutionStatus, Registry

log = logging.getLogger(__name__)

RESUMABLE = (ExecutionStatus.pending, ExecutionStatus.running, ExecutionStatus.interrupted)


class Worker:
    """Runs the executions of one registry as they come; see the module docstring."""

    def __init__(self, registry: Registry, home: Path, poll_seconds: float = 0.5,
                 observers: list[StageObserver] = ()):
        self.registry = registry
        self.executor = Executor(registry, home, observers=observers)
        self.poll_seconds = poll_seconds

    def executions_to_run(self) -> list[str]:
        """Return the ids of executions that need work and that no live worker holds, oldest
        first."""
        ids = [execution.id for execution in reversed(self.registry.list_executions(limit=200))
               if execution.status in RESUMABLE or self._decided(execution)]
        return [execution_id for execution_id in ids
                if state.lease_holder(self.registry, state.execution_lease(execution_id))
                is None]

    def _decided(self, execution) -> bool:
        return (execution.status == ExecutionStatus.awaiting_approval
                and bool(self.registry.get_execution(execution.id).approvals))

    def run_once(self) -> int:
        """Run every execution that needs work now; return how many were run."""
        count = 0
        for execution_id in self.executions_to_run():
            if self.executor.run(execution_id) is not None:
                count += 1
        return count

    def run_forever(self, stop: threading.Event) -> None:
        """Poll and run until `stop` is set; an error in one poll is logged, not fatal."""
        log.info("pipeline worker started (poll every %.1f s)", self.poll_seconds)
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:  # keep serving later executions; this one is logged
                log.exception("pipeline worker: a poll failed; retrying")
            stop.wait(self.poll_seconds)
        log.info("pipeline worker stopped")
