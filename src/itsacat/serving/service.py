"""The state of one running service: its settings, metrics and the model snapshot it serves."""

from __future__ import annotations

from itsacat.serving.errors import MODEL_NOT_READY
from itsacat.serving.metrics import ServiceMetrics
from itsacat.serving.settings import ServingSettings
from itsacat.serving.swap import ModelSource, ServedModel, SlotWatcher


class Service:
    """The state routes share. The slot watcher replaces `served` whole, never changes it."""

    def __init__(self, settings: ServingSettings, source: ModelSource):
        self.settings = settings
        self.source = source
        self.metrics = ServiceMetrics(settings.slot)
        self.served: ServedModel | None = None
        self.watcher = SlotWatcher(source, current=lambda: self.served, swap=self.swap,
                                   on_outcome=self._count_swap, interval=settings.poll_seconds)

    @property
    def slot(self) -> str:
        return self.settings.slot

    def swap(self, served: ServedModel) -> None:
        self.served = served
        self.metrics.model_version.labels(self.slot).set(
            served.version if served.version is not None else 0)

    def require_model(self) -> ServedModel:
        """Return the current snapshot, or raise MODEL_NOT_READY (503) while there is none."""
        served = self.served
        if served is None:
            raise MODEL_NOT_READY.error(slot=self.slot)
        return served

    def _count_swap(self, outcome: str) -> None:
        self.metrics.swaps.labels(outcome).inc()
