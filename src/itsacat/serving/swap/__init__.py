"""Hot swap of the served model: snapshots, sources and the slot watcher."""

from itsacat.serving.swap.served import CandidateRejected, ServedModel, check_candidate
from itsacat.serving.swap.sources import FolderSource, ModelSource, RegistrySlotSource, StaticSource
from itsacat.serving.swap.watcher import SlotWatcher

__all__ = ["CandidateRejected", "FolderSource", "ModelSource", "RegistrySlotSource",
           "ServedModel", "SlotWatcher", "StaticSource", "check_candidate"]
