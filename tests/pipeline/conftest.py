"""Fixtures of the pipeline tests: a real registry in a temporary home, real blue and green
services on free ports of 127.0.0.1, and small models registered by hand."""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from itsacat.nn import Model, initialize, parse_spec
from itsacat.pipeline import PipelineConfig
from itsacat.pipeline.stack import Stack
from itsacat.registry import open_registry
from itsacat.settings import Settings
from tests.conftest import SMALL_SPEC

N_X = 64 * 64 * 3


def free_port() -> int:
    """Return a port of 127.0.0.1 that the system chose at random and nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_config(**changes) -> PipelineConfig:
    """Settings for tests: free ports, short timeouts, no report, no image build."""
    config = PipelineConfig().replace(
        docker="off", approval="auto", services__blue_port=free_port(),
        services__green_port=free_port(), services__ready_timeout=20.0,
        admin__port=free_port(), training__report=False, gates__min_test_accuracy=0.0,
        inbox__poll_seconds=0.05, inbox__stable_polls=2, notify__backoff_seconds=0.01)
    return config.replace(**changes)



def register_model(registry, accuracy: float | None, seed: int = 1):
    """Register a small 5-3-1 model taking 64×64 RGB input, with the given test accuracy."""
    spec = parse_spec(SMALL_SPEC | {"seed": seed}, "small spec")
    model = Model(spec, initialize(spec, N_X))
    metrics = {} if accuracy is None else {"train": {"accuracy": accuracy},
                                           "test": {"accuracy": accuracy}}
    return registry.register_model(model, metrics=metrics, source="import")


def cli_command(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "itsacat", "--home", str(home), *args]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def registry(home: Path):
    with open_registry(Settings.from_env(home)) as registry:
        yield registry


@pytest.fixture(scope="package")
def live(tmp_path_factory) -> Iterator[tuple]:
    """One home with running blue and green services, shared by the package's tests.

    Tests that use it read the slots at their start and assert changes from there, because
    earlier tests leave their model versions and executions behind.
    """
    home = tmp_path_factory.mktemp("live") / "home"
    config = make_config()
    with open_registry(Settings.from_env(home)) as registry:
        stack = Stack(registry, home, config, worker=False, inbox=False, admin=False)
        with stack:
            yield home, registry, config


class Receiver:
    """A webhook receiver on 127.0.0.1 that fails the first `failures` requests with 503."""

    def __init__(self, failures: int = 0, status: int = 200):
        self.bodies: list[dict] = []
        self.failures = failures
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                receiver.bodies.append(body)
                failing = len(receiver.bodies) <= receiver.failures
                self.send_response(503 if failing else receiver.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.shutdown()
        self.server.server_close()

    def events(self) -> list[str]:
        return [body["event"] for body in self.bodies]
