"""The invocation ledger: drops repeated deliveries and records failures, in the parameter store.

Delivery is at least once, so one invocation may arrive twice. Before a function runs, its
attempt claims the key `<id>/attempt<n>` with an atomic put-if-absent. A second copy of the
same attempt finds the claim taken and is dropped. A retry after a timeout is a new attempt with a
new key, because the first one may have been lost. When a slow first attempt and its retry
both run, the functions' writes are idempotent (same keys, same values) and fan-in counts
distinct neurons, so the result does not change.

The reference design kept this table in DynamoDB; here it lives beside the weights.
"""

from __future__ import annotations

import enum
from typing import Any

from itsacat.serverless.store import ParamStore


class InvocationState(enum.Enum):
    """The state of one invocation."""

    QUEUED = "queued"  # invoke() accepted it; no worker has claimed it yet
    RUNNING = "running"  # an attempt claimed it in the ledger and its function is running
    DONE = "done"  # its function returned; later copies are dropped
    FAILED = "failed"  # its function raised on the last attempt allowed
    CRASHED = "crashed"  # the executor lost it or it timed out on the last attempt allowed


class InvocationLedger:
    """Claims, completions and failures of invocations, stored under `<epoch scope>/ledger/`."""

    def __init__(self, store: ParamStore):
        self.store = store

    def claim(self, invocation_id: str, attempt: int) -> bool:
        """Claim one attempt; return False when this attempt already ran or the invocation
        is done, so that the caller drops the copy."""
        if self.store.exists(_key(invocation_id, "done")):
            return False
        return self.store.put_if_absent(_key(invocation_id, f"attempt{attempt}"),
                                        InvocationState.RUNNING.value)

    def finish(self, invocation_id: str) -> None:
        self.store.put_if_absent(_key(invocation_id, "done"), InvocationState.DONE.value)

    def record_failure(self, invocation_id: str, state: InvocationState, function: str,
                       event: dict[str, Any], error: str, attempts: int) -> None:
        """Keep what failed, with its event, so that it can be inspected and replayed."""
        self.store.put_json(_key(invocation_id, "failure"),
                            {"state": state.value, "function": function, "event": event,
                             "error": error, "attempts": attempts})

    def failure(self, invocation_id: str) -> dict[str, Any] | None:
        return self.store.get_json(_key(invocation_id, "failure"))


def _key(invocation_id: str, suffix: str) -> str:
    # Ids start with their epoch scope ("e3/…"), so cleaning an epoch cleans its ledger too.
    scope, _, rest = invocation_id.partition("/")
    return f"{scope}/ledger/{rest}/{suffix}"
