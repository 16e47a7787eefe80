"""Promotion of the approved candidate to blue, and rollback of blue.

A promotion holds the registry's promotion lease, so two executions never promote at the
same time. It swaps blue by compare-and-swap against the blue version that the gate compared
the candidate with. If blue changed since, the candidate was judged against a model that is
no longer in production, so the promotion fails instead of overwriting it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from itsacat.errors import ItsacatError
from itsacat.pipeline import state
from itsacat.pipeline.services import ServiceError, wait_for_version
from itsacat.pipeline.stages import StageContext, StageFailed
from itsacat.registry import Registry, SlotChange, SlotConflict
from itsacat.registry.errors import describe_version

log = logging.getLogger(__name__)

PROMOTION_WAIT_SECONDS = 60.0


class PromotionBusy(ItsacatError):
    """Another process held the promotion lock for longer than a caller waits."""

    http_status = 409

    def __init__(self, holder: str):
        super().__init__("promotion_busy", f"a promotion by {holder} is in progress; try "
                         "again when it ends (itsacat pipeline status shows it)")


def promote_blue(context: StageContext) -> dict[str, Any]:
    """Swap blue to the candidate, then wait briefly for the blue service to serve it."""
    version_id = context.model_version_id()
    expected = context.outcomes["gate"]["blue_version_id"]
    approval = context.outcomes["approve"]
    holder = state.Holder.this_process()
    _acquire_promotion(context, holder)
    try:
        current = context.registry.slot_state("blue").version_id
        if current == version_id:
            context.log(f"blue already serves model version {version_id}")
        else:
            try:
                context.registry.promote(
                    version_id, "blue", expected=expected, by=approval["by"],
                    reason=f"execution {context.execution.id}: {approval['reason']}")
            except SlotConflict as conflict:
                raise StageFailed(
                    f"blue changed after the gate compared the candidate with it: blue holds "
                    f"{describe_version(conflict.current)}, the gate compared with "
                    f"{describe_version(expected)}; start a new execution to judge the "
                    "candidate against the current blue") from None
            context.log(f"blue: {describe_version(expected)} -> model version {version_id}")
    finally:
        state.release(context.registry, state.PROMOTION_LEASE, holder)

    return {"model_version_id": version_id, "previous_version_id": expected,
            **_confirm_blue(context, version_id)}


def rollback(registry: Registry, *, by: str, reason: str, slot: str = "blue") -> SlotChange:
    """Put `slot` back to its previous model version, under the promotion lease."""
    holder = state.Holder.this_process()
    deadline = time.monotonic() + PROMOTION_WAIT_SECONDS
    while True:
        try:
            state.acquire(registry, state.PROMOTION_LEASE, holder)
            break
        except state.LeaseBusy as busy:
            if time.monotonic() > deadline:
                raise PromotionBusy(busy.holder) from None
            time.sleep(0.2)
    try:
        return registry.rollback(slot, by=by, reason=reason)
    finally:
        state.release(registry, state.PROMOTION_LEASE, holder)


def _acquire_promotion(context: StageContext, holder: state.Holder) -> None:
    deadline = time.monotonic() + PROMOTION_WAIT_SECONDS
    waiting_logged = False
    while True:
        try:
            state.acquire(context.registry, state.PROMOTION_LEASE, holder)
            return
        except state.LeaseBusy as busy:
            if not waiting_logged:
                context.log(f"waiting for the promotion held by {busy.holder}")
                waiting_logged = True
            if time.monotonic() > deadline:
                raise StageFailed(f"another promotion, by {busy.holder}, held the lock for "
                                  f"more than {PROMOTION_WAIT_SECONDS:.0f} s") from None
            time.sleep(0.2)


def _confirm_blue(context: StageContext, version_id: int) -> dict[str, Any]:
    """Wait for the blue service to serve the version; a missing service is logged only.

    The slot has changed whatever the service does, so the stage passes either way: a blue
    service that is down serves the new version when it starts.
    """
    url = context.config.services.url("blue")
    try:
        waited = wait_for_version(url, version_id, context.config.services.ready_timeout)
    except ServiceError as error:
        context.log(f"blue service not confirmed: {error}")
        return {"blue_url": url, "blue_serving": False}
    context.log(f"blue service {url} serves model version {version_id} after {waited:.2f} s")
    return {"blue_url": url, "blue_serving": True, "reload_seconds": round(waited, 3)}
