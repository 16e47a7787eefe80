"""Running a pipeline execution: its stages in order, each recorded in the registry.

    execution = create_execution(registry, settings, trigger="cli")
    Executor(registry, home).run(execution.id)

The executor holds the execution's lease in the registry while it runs, so two workers never
run the same execution. It starts at the first stage that has not finished, so a restart
after a crash resumes where the crash happened. Stages that passed keep their outcome and
timestamps. A stage that was running when the process died runs again, which is safe
because stages are idempotent. When a stage fails, the stages after it are skipped, except
`notify`, which runs to announce the failure.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from itsacat.errors import ItsacatError
from itsacat.nn import SpecError
from itsacat.nn.io import ModelFileError
from itsacat.pipeline import state
from itsacat.pipeline.approval import approve
from itsacat.pipeline.gates import gate
from itsacat.pipeline.notify import Notifier, deliveries_json
from itsacat.pipeline.promotion import promote_blue
from itsacat.pipeline.release import build_image, build_release
from itsacat.pipeline.stages import (
    STAGES,
    AwaitingDecision,
    ExecutionSettings,
    StageContext,
    StageFailed,
    StageSkipped,
    evaluate,
    register,
    train,
)
from itsacat.pipeline.verify import deploy_green, verify_green
from itsacat.registry import Execution, ExecutionStatus, Registry, StageStatus

log = logging.getLogger(__name__)

EXPECTED_ERRORS = (ItsacatError, SpecError, ModelFileError)
FINISHED = (ExecutionStatus.succeeded, ExecutionStatus.failed)


class StageObserver(Protocol):
    """Told when each stage finishes; the CLI prints progress with it."""

    def stage_finished(self, execution_id: str, stage: str, status: StageStatus,
                       detail: str) -> None: ...


def announce(context: StageContext) -> dict[str, Any]:
    """Send the execution's result to the log and the webhooks."""
    execution = context.registry.get_execution(context.execution.id)
    failed = [stage for stage in execution.stages if stage.status == StageStatus.failed]
    fields: dict[str, Any] = {"model_version": execution.model_version_id,
                              "blue_version": context.registry.slot_state("blue").version_id,
                              "release": context.outcomes.get("build_release", {}).get("release")}
    if failed:
        event = "execution_failed"
        fields |= {"stage": failed[0].name,
                   "reason": (failed[0].outcome or {}).get("reason", "failed")}
    else:
        event = "execution_succeeded"
    deliveries = Notifier(context.config.notify).send(event, execution.id, **fields)
    for delivery in deliveries:
        context.log(f"webhook {delivery.url}: "
                    + ("delivered" if delivery.delivered else f"not delivered: {delivery.error}")
                    + f" after {delivery.attempts} attempt(s)")
    return {"event": event, "deliveries": deliveries_json(deliveries)}


STAGE_FUNCTIONS: dict[str, Callable[[StageContext], dict[str, Any]]] = {
    "train": train, "evaluate": evaluate, "register": register,
    "build_release": build_release, "build_image": build_image,
    "deploy_green": deploy_green, "verify_green": verify_green, "gate": gate,
    "approve": approve, "promote_blue": promote_blue, "notify": announce,
}
assert tuple(STAGE_FUNCTIONS) == STAGES


def create_execution(registry: Registry, settings: ExecutionSettings, trigger: str,
                     execution_id: str | None = None) -> Execution:
    """Record a new execution, pending, with every stage waiting and its settings frozen."""
    execution_id = execution_id or uuid.uuid4().hex[:12]
    state.save_settings(registry, execution_id, settings.to_json())
    execution = registry.create_execution(
        trigger, data_path=settings.data_path, model_version_id=settings.model_version_id,
        stage_names=STAGES, execution_id=execution_id)
    log.info("execution %s: created by %s (%s)", execution.id, trigger,
             settings.data_path or f"model version {settings.model_version_id}")
    return execution


class Executor:
    """Runs executions in this process; `holder` names the process in the registry's leases."""

    def __init__(self, registry: Registry, home: Path, holder: state.Holder | None = None,
                 observers: list[StageObserver] = ()):
        self.registry = registry
        self.home = Path(home)
        self.holder = holder or state.Holder.this_process()
        self.observers = list(observers)

    def run(self, execution_id: str) -> Execution | None:
        """Run the execution from its first unfinished stage until it finishes or pauses.

        Returns the execution as it is then, or None when another live process holds
        it. Ctrl-C leaves it `interrupted`, for a later run to resume.
        """
        lease = state.execution_lease(execution_id)
        try:
            state.acquire(self.registry, lease, self.holder)
        except state.LeaseBusy as busy:
            log.debug("execution %s: held by %s", execution_id, busy.holder)
            return None
        keeper = _LeaseKeeper(self.registry, lease, self.holder)
        try:
            return self._run(execution_id)
        except (KeyboardInterrupt, SystemExit):
            self.registry.update_execution(execution_id, status=ExecutionStatus.interrupted)
            log.warning("execution %s: interrupted; it resumes when a worker runs again",
                        execution_id)
            raise
        finally:
            keeper.stop()
            state.release(self.registry, lease, self.holder)

    def _run(self, execution_id: str) -> Execution:
        execution = self.registry.get_execution(execution_id)
        if execution.status in FINISHED:
            return execution
        stored = state.load_settings(self.registry, execution_id)
        if stored is None:
            raise ItsacatError("execution_without_settings", f"execution {execution_id} has no "
                               "stored settings; it was not created by itsacat.pipeline")
        settings = ExecutionSettings.from_json(stored, execution_id)
        context = StageContext(self.registry, self.home, execution, settings)
        was_waiting = execution.status == ExecutionStatus.awaiting_approval
        self.registry.update_execution(execution_id, status=ExecutionStatus.running)

        failure: tuple[str, str] | None = None
        for stage in execution.stages:
            if stage.status in (StageStatus.passed, StageStatus.skipped):
                context.outcomes[stage.name] = stage.outcome or {}
                continue
            if stage.status == StageStatus.failed:
                failure = failure or (stage.name, (stage.outcome or {}).get("reason", "failed"))
                continue
            if failure and stage.name != "notify":
                self._finish(context, stage.name, StageStatus.skipped,
                             f"stage {failure[0]} failed", {"reason": f"stage {failure[0]} failed"})
                continue

            status, detail = self._run_stage(context, stage.name, stage.status, was_waiting)
            if status == ExecutionStatus.awaiting_approval:
                return self.registry.update_execution(
                    execution_id, status=ExecutionStatus.awaiting_approval)
            if status == StageStatus.failed and failure is None:
                failure = (stage.name, detail)

        final = ExecutionStatus.failed if failure else ExecutionStatus.succeeded
        log.info("execution %s: %s%s", execution_id, final,
                 f" at stage {failure[0]}: {failure[1]}" if failure else "")
        return self.registry.update_execution(execution_id, status=final)

    def _run_stage(self, context: StageContext, name: str, stored: StageStatus,
                   was_waiting: bool):
        """Run one stage and record its result; returns (status, detail)."""
        context.lines = []
        context.execution = self.registry.get_execution(context.execution.id)
        # A stage found running (interrupted, or waiting for approval) keeps the time its
        # first attempt started.
        if stored != StageStatus.running:
            self.registry.upsert_stage(context.execution.id, name, StageStatus.running)
        try:
            outcome = STAGE_FUNCTIONS[name](context)
        except StageSkipped as skipped:
            return self._finish(context, name, StageStatus.skipped, skipped.reason,
                                {"reason": skipped.reason})
        except StageFailed as failed:
            return self._finish(context, name, StageStatus.failed, failed.reason,
                                failed.outcome | {"reason": failed.reason})
        except AwaitingDecision as waiting:
            return self._pause(context, name, waiting, was_waiting)
        except EXPECTED_ERRORS as error:
            return self._finish(context, name, StageStatus.failed, str(error),
                                {"reason": str(error)})
        except Exception as error:  # a bug in a stage: record it, keep the trace in the log
            log.exception("execution %s: stage %s raised", context.execution.id, name)
            reason = f"internal error: {type(error).__name__}: {error}"
            return self._finish(context, name, StageStatus.failed, reason, {"reason": reason})
        context.outcomes[name] = outcome
        return self._finish(context, name, StageStatus.passed, "", outcome)

    def _finish(self, context: StageContext, name: str, status: StageStatus, detail: str,
                outcome: dict[str, Any]):
        lines = context.lines + ([f"{status}: {detail}"] if detail else [])
        self.registry.upsert_stage(context.execution.id, name, status, log="\n".join(lines),
                                   outcome=outcome)
        log.info("execution %s stage %s model version %s: %s%s", context.execution.id, name,
                 context.outcomes.get("register", {}).get("model_version_id",
                                                           context.settings.model_version_id),
                 status, f" ({detail})" if detail else "")
        for observer in self.observers:
            observer.stage_finished(context.execution.id, name, status, detail)
        return status, detail

    def _pause(self, context: StageContext, name: str, waiting: AwaitingDecision,
               was_waiting: bool):
        self.registry.upsert_stage(context.execution.id, name, StageStatus.running,
                                   log="\n".join([*context.lines, waiting.reason]),
                                   outcome=waiting.outcome)
        if not was_waiting:
            gates = context.outcomes.get("gate", {}).get("gates", [])
            Notifier(context.config.notify).send(
                "awaiting_approval", context.execution.id,
                model_version=context.model_version_id(), reason=waiting.reason,
                gates=gates)
        log.info("execution %s: %s", context.execution.id, waiting.reason)
        return ExecutionStatus.awaiting_approval, waiting.reason


class _LeaseKeeper:
    """Renews a lease in the background while a long stage (training) runs."""

    def __init__(self, registry: Registry, name: str, holder: state.Holder):
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._renew, args=(registry, name, holder),
                                        daemon=True, name=f"lease {name}")
        self._thread.start()

    def _renew(self, registry: Registry, name: str, holder: state.Holder) -> None:
        while not self._stopped.wait(state.LEASE_SECONDS / 3):
            try:
                state.acquire(registry, name, holder)
            except (state.LeaseBusy, ItsacatError) as error:
                log.warning("lease %s: renewal failed: %s", name, error)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()
