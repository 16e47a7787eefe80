"""Model sources of a service: a registry slot, a model folder, or a model given in code.

A source has two calls. `generation()` is cheap and is polled often: it changes whenever the
model to serve may have changed. `load()` is slow, runs in a worker thread, and returns the
verified model (or None while there is nothing to serve).
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Protocol

from itsacat.nn.io import PARAMS_FILE, SPEC_FILE, load_model
from itsacat.serving.swap.served import ServedModel


class ModelSource(Protocol):
    description: str

    def generation(self) -> int: ...

    def load(self) -> ServedModel | None: ...


class RegistrySlotSource:
    """The model version a registry slot points at; its artifact's sha256 is checked on load."""

    def __init__(self, registry, slot: str):
        self.registry = registry
        self.slot = slot
        self.description = f"registry slot {slot}"

    def generation(self) -> int:
        return self.registry.slot_state(self.slot).generation

    def load(self) -> ServedModel | None:
        state = self.registry.slot_state(self.slot)
        if state.version_id is None:
            return None
        version = self.registry.get_version(state.version_id)
        model = self.registry.load_model(version)  # raises ArtifactCorrupted on a mismatch
        return ServedModel(model, version.id, version.artifact_sha256,
                           f"model version v{version.id} in slot {self.slot}")


class FolderSource:
    """A model folder (`params.h5` + `parameters.json`), reloaded when either file changes."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.description = f"model folder {self.folder}"

    def generation(self) -> int:
        try:
            stamps = tuple((self.folder / name).stat().st_mtime_ns
                           for name in (PARAMS_FILE, SPEC_FILE))
        except FileNotFoundError:
            return -1
        return hash(stamps)

    def load(self) -> ServedModel | None:
        digest = hashlib.sha256((self.folder / PARAMS_FILE).read_bytes()).hexdigest()
        model = load_model(self.folder)
        # NOTE: the digest is of the file as read just before loading it. A writer that
        # replaces params.h5 in between is noticed only at the next generation change.
        return ServedModel(model, None, digest, str(self.folder))


class StaticSource:
    """A model handed over in code, for embedding the app and for tests; `replace` swaps it."""

    def __init__(self, served: ServedModel | None, description: str = "a model given in code"):
        self._served = served
        self._generation = 0
        self._lock = threading.Lock()
        self.description = description

    def generation(self) -> int:
        return self._generation

    def load(self) -> ServedModel | None:
        return self._served

    def replace(self, served: ServedModel | None) -> None:
        with self._lock:
            self._served = served
            self._generation += 1
