"""Everything `itsacat up` runs: the blue and green services as child processes, and in this
process the pipeline worker, the inbox watcher and the admin endpoint.

`stop()` ends them all: the threads first (a stage still running after a few seconds is
left to resume at the next start), then the services with SIGTERM.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from itsacat.pipeline.config import PipelineConfig
from itsacat.pipeline.inbox import InboxWatcher
from itsacat.pipeline.services import ServiceProcess, start_service, wait_until_up
from itsacat.pipeline.worker import Worker
from itsacat.registry import Registry
from itsacat.serving.ports import check_port_free

log = logging.getLogger(__name__)

SERVICE_START_SECONDS = 60.0
THREAD_STOP_SECONDS = 5.0


class Stack:
    """The services and background loops of one itsacat home; see the module docstring."""

    def __init__(self, registry: Registry, home: Path, config: PipelineConfig, *,
                 worker: bool = True, inbox: bool = True, admin: bool = True,
                 epochs: int | None = None, observers=()):
        self.registry = registry
        self.home = Path(home)
        self.config = config
        self.services: dict[str, ServiceProcess] = {}
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.worker = Worker(registry, home, observers=observers) if worker else None
        self.inbox = InboxWatcher(registry, home, config, epochs=epochs) if inbox else None
        self.admin = None
        self._want_admin = admin

    def start(self) -> None:
        """Start everything; on a failure, stop what already started and raise."""
        try:
            self._start_services()
            self._start_loops()
            if self._want_admin:
                self._start_admin()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.stop_event.set()
        if self.admin is not None:
            self.admin.stop()
        for thread in self.threads:
            thread.join(THREAD_STOP_SECONDS)
            if thread.is_alive():
                log.warning("%s is still busy with a stage; it resumes at the next start",
                            thread.name)
        for service in self.services.values():
            service.stop()

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def urls(self) -> dict[str, str]:
        urls = {slot: self.config.services.url(slot) for slot in ("blue", "green")}
        if self.admin is not None:
            urls["admin"] = self.admin.url
        return urls

    def _start_services(self) -> None:
        services = self.config.services
        for slot, port in (("blue", services.blue_port), ("green", services.green_port)):
            check_port_free(services.host, port, f"the {slot} service")
        for slot, port in (("blue", services.blue_port), ("green", services.green_port)):
            self.services[slot] = start_service(slot, services.host, port, self.home,
                                                self.home / "logs")
        for service in self.services.values():
            wait_until_up(service, SERVICE_START_SECONDS)

    def _start_loops(self) -> None:
        loops = []
        if self.worker is not None:
            loops.append(("pipeline worker", self.worker.run_forever))
        if self.inbox is not None:
            loops.append(("inbox watcher", self.inbox.run_forever))
        for name, loop in loops:
            # Daemon threads, so that a stage still running at Ctrl-C does not hold the
            # process; its execution resumes at the next start.
            thread = threading.Thread(target=loop, args=(self.stop_event,), name=name,
                                      daemon=True)
            thread.start()
            self.threads.append(thread)

    def _start_admin(self) -> None:
        from itsacat.pipeline.admin import AdminServer, create_admin_app

        admin = self.config.admin
        check_port_free(admin.host, admin.port, "the admin endpoint")
        self.admin = AdminServer(create_admin_app(self.registry), admin.host, admin.port)
        self.admin.start()
