"""The blue and green prediction services as child processes, and waiting for a service to
serve a given model version.

Each service is `itsacat serve --slot SLOT` in its own process. On Linux the child has the
kernel send it SIGTERM when its parent dies, so a parent killed with SIGKILL leaves no
service running behind it.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
STOP_SECONDS = 10.0


class ServiceError(Exception):
    """A service that did not start, or did not serve the expected version in time."""


@dataclass
class ServiceProcess:
    """A running `itsacat serve` child process for one slot."""

    slot: str
    url: str
    process: subprocess.Popen
    log_path: Path

    def stop(self) -> None:
        """Stop the service with SIGTERM, then SIGKILL if it does not end in time."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning("slot %s: service %d ignored SIGTERM for %.0f s; killing it",
                        self.slot, self.process.pid, STOP_SECONDS)
            self.process.kill()
            self.process.wait()


def start_service(slot: str, host: str, port: int, home: Path, log_folder: Path,
                  poll_seconds: float = 0.2) -> ServiceProcess:
    """Start `itsacat serve --slot SLOT` on host:port, logging to log_folder/SLOT.log."""
    log_folder.mkdir(parents=True, exist_ok=True)
    log_path = log_folder / f"{slot}.log"
    command = [sys.executable, "-m", "itsacat", "--home", str(home), "serve", "--slot", slot,
               "--host", host, "--port", str(port), "--poll-seconds", str(poll_seconds)]
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    url = f"http://{host}:{port}"
    log.info("slot %s: service starting on %s (pid %d, log %s)", slot, url, process.pid,
             log_path)
    return ServiceProcess(slot, url, process, log_path)


def wait_until_up(service: ServiceProcess, timeout: float) -> None:
    """Wait until the service responds to `GET /`; raise `ServiceError` if it exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise ServiceError(f"slot {service.slot}: the service exited with status "
                               f"{service.process.returncode}; see {service.log_path}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(service.url + "/", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise ServiceError(f"slot {service.slot}: the service did not respond on {service.url} "
                       f"within {timeout:.0f} s; see {service.log_path}")


def served_version(url: str) -> int | None:
    """Return the model version the service at `url` serves, or None when it serves none.

    Raises `httpx.HTTPError` when no service responds.
    """
    response = httpx.get(url + "/readyz", timeout=2.0)
    if response.status_code != 200:
        return None
    return response.json().get("model_version")


def wait_for_version(url: str, version_id: int, timeout: float) -> float:
    """Wait until the service at `url` serves `version_id`; return the seconds waited.

    Raises `ServiceError` naming what the service served last when the time runs out.
    """
    started = time.monotonic()
    last: str = "nothing (no answer)"
    while True:
        try:
            current = served_version(url)
            last = "no model version" if current is None else f"model version {current}"
            if current == version_id:
                return time.monotonic() - started
        except httpx.HTTPError as error:
            last = f"no answer ({type(error).__name__})"
        if time.monotonic() - started > timeout:
            raise ServiceError(f"the service at {url} still serves {last} after "
                               f"{timeout:.0f} s, not model version {version_id}; check "
                               "that it runs (itsacat up) and reads the same registry")
        time.sleep(0.05)


def _die_with_parent() -> None:
    # Runs in the child between fork and exec; Linux only, elsewhere the call is skipped.
    # NOTE: Linux sends the signal when the forking thread ends, not the whole process, so
    # start services from a thread that lives as long as they should (the main thread).
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
