"""The runtime: queues invocations, delivers them to an executor, retries and gives up.

`Runtime.invoke(function, event)` queues an invocation whose id is derived from the event
("e3/neuron/mb1/forward/l2/n5"), so the same step invoked twice has the same id and the
ledger drops the second copy. `Runtime.run_until_idle()` delivers queued invocations to the
executor until nothing is left, and follows the chain: a function's own `invoke` calls are
collected while it runs and queued when it returns.

Delivery is at least once. A delivered attempt that does not finish within `timeout` is
retried as a new attempt. So is every outstanding attempt once nothing is running any more,
because then nothing can finish it. A function that raises is retried too, and after
`max_attempts` attempts the failure is recorded in the ledger with its event and raised as
an `InvocationError`, so a run fails with a message instead of hanging.

Executors: `inline` runs one invocation at a time in the calling thread, in queue order, so
a run is deterministic; `threads` runs them on a thread pool; `ray` runs each as a Ray task,
whose worker opens the parameter store by URL, so it needs a Redis store.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any

from itsacat.errors import ItsacatError
from itsacat.serverless.functions import FUNCTIONS
from itsacat.serverless.ledger import InvocationLedger, InvocationState
from itsacat.serverless.store import ParamStore, ParamStoreError, open_store

log = logging.getLogger(__name__)

EXECUTORS = ("inline", "threads", "ray")

# Event fields that identify an invocation, with the tag each gets in the id.
ID_FIELDS = (("action", ""), ("minibatch", "mb"), ("direction", ""), ("layer", "l"),
             ("neuron", "n"))


class InvocationError(ItsacatError):
    """An invocation that failed on every attempt; `resumable` when the store went away."""

    def __init__(self, code: str, message: str, resumable: bool = False):
        super().__init__(code, message)
        self.resumable = resumable


@dataclass(frozen=True)
class Invocation:
    """One delivery of a function with its event. `delay` is set only by `Faults`."""

    id: str
    function: str
    event: dict[str, Any]
    attempt: int = 0
    delay: float = 0.0


@dataclass
class Outcome:
    """The result of one attempt, as the runtime receives it."""

    invocation: Invocation
    state: str  # "done", "duplicate" or "failed"
    follow_ups: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    seconds: float = 0.0
    bytes: int = 0  # moved through the worker's own store handle
    error: str = ""
    resumable: bool = False


@dataclass
class RuntimeStats:
    """Counters of one `run_until_idle`; `invocations` counts functions that ran to the end."""

    invocations: int = 0
    retries: int = 0
    duplicates: int = 0
    bytes: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"invocations": self.invocations, "retries": self.retries,
                "duplicates": self.duplicates, "bytes": self.bytes,
                "seconds": round(self.seconds, 6)}


@dataclass
class Faults:
    """Test hook that disturbs delivery the way a real queue may: each delivery is repeated
    with probability `duplicate`, lost (never run) with probability `lose`, and started
    `delay` seconds late with probability `slow`. Draws come from `seed`, so a disturbed run
    can be repeated."""

    duplicate: float = 0.0
    lose: float = 0.0
    slow: float = 0.0
    delay: float = 0.0
    seed: int = 0

    def __post_init__(self):
        self._random = random.Random(self.seed)

    def deliveries(self, invocation: Invocation) -> list[Invocation]:
        if self._random.random() < self.lose:
            return []
        copies = 2 if self._random.random() < self.duplicate else 1
        if self._random.random() < self.slow:
            invocation = replace(invocation, delay=self.delay)
        return [invocation] * copies


class InvocationContext:
    """The `runtime` a function receives: its `invoke` is collected and queued on return."""

    def __init__(self, invocation: Invocation):
        self.invocation = invocation
        self.follow_ups: list[tuple[str, dict[str, Any]]] = []

    def invoke(self, function: str, event: dict[str, Any]) -> None:
        self.follow_ups.append((function, event))


def invocation_id(function: str, event: dict[str, Any]) -> str:
    """Derive the id of `function` on `event` from the fields that identify the step."""
    parts = [f"e{event['epoch']}", function]
    parts.extend(f"{tag}{event[name]}" for name, tag in ID_FIELDS if name in event)
    return "/".join(parts)


def execute(invocation: Invocation, store: ParamStore) -> Outcome:
    """Claim `invocation` in the ledger and run its function; errors become a failed outcome."""
    if invocation.delay:
        time.sleep(invocation.delay)
    ledger = InvocationLedger(store)
    bytes_before = store.bytes_moved
    started = time.perf_counter()
    try:
        if not ledger.claim(invocation.id, invocation.attempt):
            return Outcome(invocation, "duplicate")
        context = InvocationContext(invocation)
        FUNCTIONS[invocation.function](invocation.event, store, context)
        ledger.finish(invocation.id)
    except Exception as error:  # reported to the runtime, which retries or fails the run
        return Outcome(invocation, "failed", seconds=time.perf_counter() - started,
                       error=_describe(error),
                       resumable=bool(getattr(error, "resumable", False)))
    seconds = time.perf_counter() - started
    if log.isEnabledFor(logging.DEBUG):
        event = invocation.event
        log.debug("invocation %s: %s minibatch %s layer %s neuron %s %s %.3f ms",
                  invocation.id, invocation.function, event.get("minibatch", "-"),
                  event.get("layer", "-"), event.get("neuron", "-"),
                  event.get("direction", event.get("action", "-")), seconds * 1e3)
    return Outcome(invocation, "done", context.follow_ups, seconds,
                   store.bytes_moved - bytes_before)


def _describe(error: Exception) -> str:
    if isinstance(error, ItsacatError):
        return error.message
    return f"{type(error).__name__}: {error}"


class InlineExecutor:
    """Runs one invocation at a time in the calling thread, first in, first out."""

    def __init__(self, store: ParamStore):
        self.store = store
        self.queue: deque[Invocation] = deque()

    @property
    def in_flight(self) -> int:
        return len(self.queue)

    def start(self, invocation: Invocation) -> None:
        self.queue.append(invocation)

    def collect(self, timeout: float | None) -> list[Outcome]:
        return [execute(self.queue.popleft(), self.store)]

    def drain(self) -> None:
        self.queue.clear()

    def close(self) -> None:
        self.queue.clear()


class ThreadExecutor:
    """Runs invocations on a pool of threads that share the store handle."""

    def __init__(self, store: ParamStore, workers: int | None = None):
        self.store = store
        self.pool = ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2,
                                       thread_name_prefix="itsacat-invocation")
        self.futures: set[Future] = set()

    @property
    def in_flight(self) -> int:
        return len(self.futures)

    def start(self, invocation: Invocation) -> None:
        self.futures.add(self.pool.submit(execute, invocation, self.store))

    def collect(self, timeout: float | None) -> list[Outcome]:
        done, self.futures = wait(self.futures, timeout=timeout, return_when=FIRST_COMPLETED)
        return [future.result() for future in done]

    def drain(self) -> None:
        wait(self.futures)
        self.futures = set()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


_WORKER_STORES: dict[tuple[str, str], ParamStore] = {}


def execute_on_worker(invocation: Invocation, url: str, namespace: str) -> Outcome:
    """Run `invocation` in a Ray worker, opening the store once per worker process."""
    store = _WORKER_STORES.get((url, namespace))
    if store is None:
        try:
            store = _WORKER_STORES[(url, namespace)] = open_store(url, namespace)
        except ParamStoreError as error:
            return Outcome(invocation, "failed", error=error.message, resumable=error.resumable)
    return execute(invocation, store)


class RayExecutor:
    """Runs each invocation as a Ray task on the cluster `ray.init` finds or starts."""

    def __init__(self, store: ParamStore, address: str | None = None):
        if store.url == "memory":
            raise InvocationError("store_not_shared", "the memory parameter store lives "
                                  "inside one process, so Ray workers cannot reach it; use "
                                  "--param-store redis://127.0.0.1:6379/0 with --executor ray")
        try:
            import ray
        except ImportError:
            raise InvocationError("ray_missing", "--executor ray needs Ray; install it with "
                                  "pip install 'itsacat[ray]'") from None
        self.ray = ray
        if not ray.is_initialized():
            ray.init(address=address or os.environ.get("RAY_ADDRESS"), include_dashboard=False,
                     log_to_driver=False)
        self.store = store
        self.task = ray.remote(execute_on_worker)
        self.refs: list = []

    @property
    def in_flight(self) -> int:
        return len(self.refs)

    def start(self, invocation: Invocation) -> None:
        self.refs.append(self.task.remote(invocation, self.store.url, self.store.namespace))

    def collect(self, timeout: float | None) -> list[Outcome]:
        ready, self.refs = self.ray.wait(self.refs, num_returns=1, timeout=timeout)
        if ready and self.refs:
            more, self.refs = self.ray.wait(self.refs, num_returns=len(self.refs), timeout=0)
            ready += more
        return self.ray.get(ready)

    def drain(self) -> None:
        if self.refs:
            self.ray.wait(self.refs, num_returns=len(self.refs))
        self.refs = []

    def close(self) -> None:
        for ref in self.refs:
            self.ray.cancel(ref)
        self.refs = []


@dataclass
class _Pending:
    invocation: Invocation
    deadline: float


class Runtime:
    """Delivers invocations to an executor until every chain has ended.

    `executor` is "inline", "threads" or "ray". `timeout` is how many seconds an attempt may
    take before it is retried, and `max_attempts` bounds the attempts of one invocation.
    `faults` is the test hook that duplicates, loses or delays deliveries.
    """

    def __init__(self, store: ParamStore, executor: str = "inline", workers: int | None = None,
                 timeout: float = 60.0, max_attempts: int = 5, faults: Faults | None = None,
                 ray_address: str | None = None):
        factories: dict[str, Callable[[], Any]] = {
            "inline": lambda: InlineExecutor(store),
            "threads": lambda: ThreadExecutor(store, workers),
            "ray": lambda: RayExecutor(store, ray_address),
        }
        if executor not in factories:
            raise InvocationError("unknown_executor", f"executor {executor!r} is not "
                                  f"available; choose one of {', '.join(EXECUTORS)}")
        self.store = store
        self.executor_name = executor
        self.executor = factories[executor]()
        self.ledger = InvocationLedger(store)
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.faults = faults
        self.queue: list[Invocation] = []
        self.remote = executor == "ray"

    def invoke(self, function: str, event: dict[str, Any]) -> str:
        """Queue `function` on `event` and return the invocation's id."""
        invocation = Invocation(invocation_id(function, event), function, event)
        self.queue.append(invocation)
        return invocation.id

    def run_until_idle(self) -> RuntimeStats:
        """Deliver invocations until none is queued, outstanding or running; return the
        counters.

        Raises `InvocationError` when an invocation fails or is lost on every attempt.
        """
        stats = RuntimeStats()
        started, bytes_before = time.perf_counter(), self.store.bytes_moved
        outstanding: dict[str, _Pending] = {}
        try:
            # Copies still in flight are waited for too: a late copy must not run after
            # the caller has cleaned up the keys it reads.
            while self.queue or outstanding or self.executor.in_flight:
                self._deliver(outstanding)
                if self.executor.in_flight == 0:
                    # Nothing running can still finish what is outstanding: it was lost.
                    for pending in list(outstanding.values()):
                        self._retry(pending, outstanding, stats, "it was lost")
                    continue
                for outcome in self.executor.collect(self._wait_seconds(outstanding)):
                    self._settle(outcome, outstanding, stats)
                for pending in self._expired(outstanding):
                    self._retry(pending, outstanding, stats,
                                f"it timed out after {self.timeout}s")
        except InvocationError:
            # Let attempts already running finish, so none writes into the store after the
            # caller has moved on.
            self.queue.clear()
            self.executor.drain()
            raise
        stats.seconds = time.perf_counter() - started
        stats.bytes += self.store.bytes_moved - bytes_before
        return stats

    def close(self) -> None:
        self.executor.close()

    def _deliver(self, outstanding: dict[str, _Pending]) -> None:
        deadline = time.monotonic() + self.timeout
        for invocation in self.queue:
            outstanding[invocation.id] = _Pending(invocation, deadline)
            copies = self.faults.deliveries(invocation) if self.faults else (invocation,)
            for copy in copies:
                self.executor.start(copy)
        self.queue.clear()

    # Deadlines grow in delivery order and a retry is delivered anew, so the first entries of
    # `outstanding` (a dict keeps insertion order) are always the ones due first.

    def _wait_seconds(self, outstanding: dict[str, _Pending]) -> float | None:
        if not outstanding:
            return None
        return max(0.0, next(iter(outstanding.values())).deadline - time.monotonic())

    def _expired(self, outstanding: dict[str, _Pending]) -> list[_Pending]:
        now = time.monotonic()
        expired = []
        for pending in outstanding.values():
            if pending.deadline > now:
                break
            expired.append(pending)
        return expired

    def _settle(self, outcome: Outcome, outstanding: dict[str, _Pending],
                stats: RuntimeStats) -> None:
        invocation = outcome.invocation
        if self.remote:
            stats.bytes += outcome.bytes
        if outcome.state == "duplicate":
            stats.duplicates += 1
            return
        pending = outstanding.get(invocation.id)
        if outcome.state == "done":
            stats.invocations += 1
            if pending is not None:
                del outstanding[invocation.id]
                for function, event in outcome.follow_ups:
                    self.invoke(function, event)
            return
        if pending is not None and pending.invocation.attempt == invocation.attempt:
            log.warning("invocation %s attempt %d failed: %s", invocation.id,
                        invocation.attempt + 1, outcome.error)
            self._retry(pending, outstanding, stats, outcome.error, outcome.resumable,
                        InvocationState.FAILED)

    def _retry(self, pending: _Pending, outstanding: dict[str, _Pending], stats: RuntimeStats,
               reason: str, resumable: bool = False,
               state: InvocationState = InvocationState.CRASHED) -> None:
        invocation = pending.invocation
        attempts = invocation.attempt + 1
        if attempts >= self.max_attempts:
            self._fail(invocation, state, reason, attempts, resumable)
        log.info("retrying invocation %s as attempt %d: %s", invocation.id, attempts + 1, reason)
        stats.retries += 1
        del outstanding[invocation.id]
        self.queue.append(replace(invocation, attempt=attempts, delay=0.0))

    def _fail(self, invocation: Invocation, state: InvocationState, reason: str,
              attempts: int, resumable: bool) -> None:
        event = json.dumps(invocation.event, sort_keys=True)
        try:
            self.ledger.record_failure(invocation.id, state, invocation.function,
                                       invocation.event, reason, attempts)
        except ParamStoreError:
            resumable = True
        raise InvocationError(
            "invocation_failed", f"invocation {invocation.id} ({invocation.function}) "
            f"{state.value} after {attempts} attempts: {reason}; event {event}",
            resumable=resumable)
