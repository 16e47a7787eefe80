"""Approvals: the approve stage, and recording a person's decision.

With `approval = "manual"` (the default) the approve stage pauses the execution until
someone runs `itsacat pipeline approve|reject` or calls the admin endpoint. With `"auto"`
the policy approves once every blocking gate passed; advisory gates that failed are named in
the approval's reason.
"""

from __future__ import annotations

from typing import Any

from itsacat.errors import ItsacatError
from itsacat.pipeline.stages import AwaitingDecision, StageContext, StageFailed
from itsacat.registry import Approval, ApprovalDecision, ExecutionStatus, Registry

AUTO_APPROVER = "policy:auto"


class ApprovalError(ItsacatError):
    """A decision that cannot be recorded: no such execution waiting, or a missing field."""

    def __init__(self, code: str, message: str, http_status: int = 409):
        super().__init__(code, message)
        self.http_status = http_status


def approve(context: StageContext) -> dict[str, Any]:
    """Pass on an approval, fail on a rejection, approve by policy, or wait for a decision."""
    approvals = context.registry.get_execution(context.execution.id).approvals
    if approvals:
        return _apply(approvals[-1])

    if context.config.approval == "auto":
        advisory = context.outcomes.get("gate", {}).get("advisory_failures", [])
        reason = "every blocking gate passed"
        if advisory:
            reason += f"; advisory gates failed: {', '.join(advisory)}"
        decision = context.registry.record_approval(
            context.execution.id, ApprovalDecision.approved, by=AUTO_APPROVER, reason=reason)
        return _apply(decision)

    raise AwaitingDecision(
        f"waiting for a decision: itsacat pipeline approve {context.execution.id} --by NAME "
        f"--reason TEXT (or reject)")


def decide(registry: Registry, execution_id: str, decision: ApprovalDecision, *, by: str,
           reason: str) -> Approval:
    """Record a person's decision on an execution that waits for one.

    Raises `ApprovalError` when `by` or `reason` is empty (400) or the execution is not
    waiting for approval (409), and `RegistryError` when it does not exist (404).
    """
    if not by.strip():
        raise ApprovalError("missing_approver", "a decision needs the name of who makes it; "
                            "pass --by NAME", 400)
    if not reason.strip():
        raise ApprovalError("missing_reason", "a decision needs a reason; pass --reason TEXT",
                            400)
    execution = registry.get_execution(execution_id)
    if execution.status != ExecutionStatus.awaiting_approval:
        raise ApprovalError("not_awaiting_approval", f"execution {execution_id} is "
                            f"{execution.status}, not awaiting_approval; only an execution "
                            "whose gates passed can be approved or rejected")
    if execution.approvals:
        # NOTE: two decisions sent at the same instant can both pass this check; the
        # approve stage then applies the later one.
        earlier = execution.approvals[-1]
        raise ApprovalError("already_decided", f"execution {execution_id} was already "
                            f"{earlier.decision} by {earlier.by} at {earlier.at:%Y-%m-%d %H:%M:%S}")
    return registry.record_approval(execution_id, ApprovalDecision(decision), by=by,
                                    reason=reason)


def _apply(decision: Approval) -> dict[str, Any]:
    outcome = {"decision": str(decision.decision), "by": decision.by, "reason": decision.reason,
               "at": decision.at.isoformat()}
    if decision.decision == ApprovalDecision.rejected:
        raise StageFailed(f"rejected by {decision.by}: {decision.reason}", outcome)
    return outcome
