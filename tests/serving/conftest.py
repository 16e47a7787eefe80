"""Fixtures of the prediction service tests: real models, the app in process, and uvicorn
servers in a thread on a free 127.0.0.1 port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from itsacat.nn import Model, initialize, parse_spec
from itsacat.nn.io import save_model
from itsacat.serving import ServingSettings, create_app
from itsacat.serving.swap import ServedModel, StaticSource

REFERENCE_SPEC = {
    "epochs": 10, "layers": 3,
    "activations": {"layer1": "relu", "layer2": "relu", "layer3": "sigmoid"},
    "neurons": {"layer1": 20, "layer2": 7, "layer3": 1},
    "learning_rate": 0.0075, "batch_size": 64, "threshold": 0.0,
}


def make_model(seed: int = 1, n_x: int = 64 * 64 * 3) -> Model:
    """A real, untrained 20-7-1 model; different seeds give different weights."""
    spec = parse_spec(REFERENCE_SPEC | {"seed": seed}, "test spec")
    return Model(spec, initialize(spec, n_x))


def served(model: Model, version: int | None = 1) -> ServedModel:
    return ServedModel(model, version, "0" * 64, f"test model v{version}")


@pytest.fixture(scope="session")
def model() -> Model:
    return make_model(seed=1)


@pytest.fixture
def client(model: Model) -> Iterator[TestClient]:
    """The app serving `model` as v1 of slot blue, in process."""
    app = create_app(ServingSettings(slot="blue"), StaticSource(served(model)))
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def model_folder(tmp_path: Path, model: Model) -> Path:
    return save_model(model, tmp_path / "model")


def free_socket() -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    return listener


class LiveServer:
    """uvicorn serving `app` in a thread on 127.0.0.1, on a port the system picked."""

    def __init__(self, app):
        self.socket = free_socket()
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run,
                                       kwargs={"sockets": [self.socket]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.socket.close()
