"""Hot swap: a background task that watches the source and swaps in each new model.

Each poll reads the source's cheap generation number. When it changes, the new model is
loaded and verified in a worker thread while the current model keeps serving requests. Then
the served snapshot is replaced in one assignment. Requests that started before keep their
own snapshot to the end. A candidate that fails to load or to pass the checks is rejected,
logged and counted, and the current model keeps serving. The same generation is not tried
again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from itsacat.errors import ItsacatError
from itsacat.nn import SpecError
from itsacat.nn.io import ModelFileError
from itsacat.serving.swap.served import ServedModel, check_candidate
from itsacat.serving.swap.sources import ModelSource

log = logging.getLogger("itsacat.serving.swap")

# Errors of a broken candidate: a digest mismatch or a missing artifact (ItsacatError from the
# registry), unreadable weights, an invalid spec, or a file system error.
CANDIDATE_ERRORS = (ItsacatError, ModelFileError, SpecError, OSError)


class SlotWatcher:
    """Polls `source` every `interval` seconds and calls `swap` with each verified model."""

    def __init__(self, source: ModelSource, current: Callable[[], ServedModel | None],
                 swap: Callable[[ServedModel], None],
                 on_outcome: Callable[[str], None] = lambda outcome: None,
                 interval: float = 0.5):
        self.source = source
        self.current = current
        self.swap = swap
        self.on_outcome = on_outcome
        self.interval = interval
        self.seen_generation: int | None = None
        self._poll_failing = False

    async def run(self) -> None:
        """Poll until cancelled; an unexpected error is logged and the loop goes on."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("slot watcher: unexpected error while polling %s",
                              self.source.description)

    async def poll(self) -> None:
        """Check the generation once and load, verify and swap in a new model if it changed."""
        generation = await self._read_generation()
        if generation is None or generation == self.seen_generation:
            return

        try:
            candidate = await asyncio.to_thread(self._load_checked)
        except CANDIDATE_ERRORS as error:
            self.seen_generation = generation
            self.on_outcome("rejected")
            current = self.current()
            log.error("slot watcher: rejected the candidate from %s: %s; still serving %s",
                      self.source.description, error,
                      current.label if current else "nothing")
            return
        self.seen_generation = generation

        current = self.current()
        if candidate is None:
            if current is not None:
                log.warning("slot watcher: %s is empty now; still serving %s",
                            self.source.description, current.label)
            return
        if current is not None and (current.version, current.artifact_digest) == (
                candidate.version, candidate.artifact_digest):
            return
        self.swap(candidate)
        self.on_outcome("swapped")
        log.info("slot watcher: now serving %s from %s (was %s)", candidate.label,
                 candidate.source, current.label if current else "nothing")

    def _load_checked(self) -> ServedModel | None:
        candidate = self.source.load()
        if candidate is not None:
            check_candidate(candidate.model, candidate.source)
        return candidate

    async def _read_generation(self) -> int | None:
        try:
            generation = await asyncio.to_thread(self.source.generation)
        except CANDIDATE_ERRORS as error:
            # Log once per failing stretch, not on every poll.
            if not self._poll_failing:
                log.error("slot watcher: cannot read %s: %s; retrying every %g s",
                          self.source.description, error, self.interval)
            self._poll_failing = True
            return None
        if self._poll_failing:
            log.info("slot watcher: %s is readable again", self.source.description)
        self._poll_failing = False
        return generation
