"""The inbox: a watched folder where a new data set starts a full pipeline execution, as an
upload to the training bucket did in the reference design.

    $ITSACAT_HOME/inbox/training_input/   drop `NAME.h5` here, with an optional parameters.json
    $ITSACAT_HOME/inbox/processed/ID/     the files of execution ID, moved here when it starts
    $ITSACAT_HOME/inbox/failed/           files that never became a valid data set, each with
                                          a NAME.reason.txt beside it

A file starts an execution only once it is complete: its size and modification time have
not changed for `stable_polls` polls, and it opens as an HDF5 file whose datasets can be
read. Names that end in `.partial` or `.tmp`, or start with a dot, are ignored, so that a
writer can copy under such a name and rename when done. The files move into `processed/`
before the execution is recorded, and a restart records any moved files that have no
execution yet, so no file starts two executions and none is lost.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import h5py

from itsacat.pipeline.config import PipelineConfig
from itsacat.pipeline.executor import create_execution
from itsacat.pipeline.stages import ExecutionSettings
from itsacat.registry import Execution, Registry, RegistryError

log = logging.getLogger(__name__)

PARAMS_NAME = "parameters.json"
IGNORED_SUFFIXES = (".partial", ".tmp")


@dataclass
class _Sighting:
    size: int
    mtime_ns: int
    stable_polls: int = 0
    stable_since: float = 0.0


class InboxWatcher:
    """Turns complete data sets dropped in the inbox into pipeline executions."""

    def __init__(self, registry: Registry, home: Path, config: PipelineConfig,
                 epochs: int | None = None):
        self.registry = registry
        self.config = config
        self.epochs = epochs
        self.inbox = Path(home) / "inbox" / "training_input"
        self.processed = Path(home) / "inbox" / "processed"
        self.failed = Path(home) / "inbox" / "failed"
        for folder in (self.inbox, self.processed, self.failed):
            folder.mkdir(parents=True, exist_ok=True)
        self._seen: dict[str, _Sighting] = {}
        self._recovered = False

    def poll(self) -> list[Execution]:
        """Look at the inbox once; return the executions started by this poll."""
        started = [] if self._recovered else self.recover()
        self._recovered = True
        names = set()
        for path in sorted(self.inbox.glob("*.h5")):
            if path.name.startswith(".") or path.name.endswith(IGNORED_SUFFIXES):
                continue
            names.add(path.name)
            execution = self._consider(path)
            if execution is not None:
                started.append(execution)
        for vanished in set(self._seen) - names:
            del self._seen[vanished]
        return started

    def recover(self) -> list[Execution]:
        """Record an execution for every processed/ID folder that has none (a crash came
        between the move and the record)."""
        started = []
        for folder in sorted(self.processed.iterdir()):
            if not folder.is_dir():
                continue
            try:
                self.registry.get_execution(folder.name)
            except RegistryError:
                data = next(iter(sorted(folder.glob("*.h5"))), None)
                if data is not None:
                    log.warning("inbox: %s was moved but not started; starting it now", data)
                    started.append(self._start(folder.name, data))
        return started

    def run_forever(self, stop) -> None:
        """Poll every `inbox.poll_seconds` until `stop` (a threading.Event) is set."""
        log.info("inbox: watching %s for *.h5 data sets", self.inbox)
        while not stop.is_set():
            try:
                self.poll()
            except Exception:  # a poll that fails is retried at the next one
                log.exception("inbox: a poll of %s failed; retrying", self.inbox)
            stop.wait(self.config.inbox.poll_seconds)

    def _consider(self, path: Path) -> Execution | None:
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        now = time.monotonic()
        seen = self._seen.get(path.name)
        if seen is None or (seen.size, seen.mtime_ns) != (stat.st_size, stat.st_mtime_ns):
            self._seen[path.name] = _Sighting(stat.st_size, stat.st_mtime_ns, 0, now)
            return None
        seen.stable_polls += 1
        if seen.stable_polls < self.config.inbox.stable_polls:
            return None

        problem = hdf5_problem(path) or params_problem(self.inbox / PARAMS_NAME)
        if problem is None:
            return self._claim(path)
        if now - seen.stable_since >= self.config.inbox.invalid_after_seconds:
            self._reject(path, problem)
        else:
            log.debug("inbox: %s is not complete yet: %s", path.name, problem)
        return None

    def _claim(self, path: Path) -> Execution | None:
        execution_id = uuid.uuid4().hex[:12]
        folder = self.processed / execution_id
        folder.mkdir()
        try:
            os.rename(path, folder / path.name)
        except FileNotFoundError:  # another watcher of the same inbox took it first
            folder.rmdir()
            return None
        params = self.inbox / PARAMS_NAME
        if params.is_file():
            os.rename(params, folder / PARAMS_NAME)
        del self._seen[path.name]
        return self._start(execution_id, folder / path.name)

    def _start(self, execution_id: str, data: Path) -> Execution:
        params = data.parent / PARAMS_NAME
        settings = ExecutionSettings(
            kind="full", config=self.config, data_path=str(data),
            params_path=str(params) if params.is_file() else None, epochs=self.epochs)
        return create_execution(self.registry, settings, f"inbox: {data.name}",
                                execution_id=execution_id)

    def _reject(self, path: Path, problem: str) -> None:
        target = self.failed / path.name
        if target.exists():
            target = self.failed / f"{path.stem}-{uuid.uuid4().hex[:6]}{path.suffix}"
        os.rename(path, target)
        reason = (f"{path.name} did not become a complete HDF5 data set within "
                  f"{self.config.inbox.invalid_after_seconds:.0f} s of its last change: "
                  f"{problem}\n")
        target.with_name(target.name + ".reason.txt").write_text(reason, encoding="utf-8")
        del self._seen[path.name]
        log.error("inbox: rejected %s: %s", path.name, problem)


def hdf5_problem(path: Path) -> str | None:
    """Return why `path` is not a complete, readable HDF5 file, or None when it is one."""
    try:
        with h5py.File(path, "r") as file:
            for name in file:
                item = file[name]
                # Reading the last element touches the end of the file, which a copy still
                # in progress has not written yet.
                if isinstance(item, h5py.Dataset) and item.size:
                    item[tuple(size - 1 for size in item.shape)]
    except (OSError, ValueError, KeyError) as error:
        return f"cannot read it as HDF5: {error}"
    return None


def params_problem(path: Path) -> str | None:
    """Return why parameters.json beside the data set is not JSON yet, or None."""
    if not path.exists():
        return None
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return f"{path.name} is not valid JSON: {error}"
    return None
