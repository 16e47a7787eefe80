"""Fixtures for the serverless tests: the shared Redis server, a Redis server of the test's
own that it may stop, a local Ray instance, and training helpers."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from itsacat.nn import initialize
from itsacat.training.vectorized import VectorizedEngine

SHARED_REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis server at 127.0.0.1:6379; each engine works in a namespace of its own."""
    import redis

    try:
        redis.Redis.from_url(SHARED_REDIS, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError as error:
        pytest.skip(f"no Redis server at {SHARED_REDIS} ({error}); start one to run the "
                    "Redis tests")
    return SHARED_REDIS


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class OwnRedis:
    """A redis-server on a free 127.0.0.1 port that a test may stop and start again."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def own_redis(tmp_path: Path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray instance with two CPUs, started once for the test session."""
    try:
        import ray
    except ImportError as error:
        pytest.skip(f"Ray is not installed ({error}); install itsacat[ray] to run the Ray "
                    "tests")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def train_epochs(engine, params, X, Y, spec, epochs: int, first_epoch: int = 0):
    """Run `epochs` epochs on `engine`; return the final weights and the epochs' results."""
    results = []
    for epoch in range(first_epoch, first_epoch + epochs):
        result = engine.run_epoch(params, X, Y, spec, epoch)
        params = result.params
        results.append(result)
    return params, results


def vectorized_run(X, Y, spec, epochs: int):
    """The reference weights: the vectorized engine from the spec's initial weights."""
    params, results = train_epochs(VectorizedEngine(), initialize(spec, X.shape[0]), X, Y,
                                   spec, epochs)
    return params, [result.cost for result in results]


def small_problem(m: int = 30, n_x: int = 12, seed: int = 0):
    """A small separable problem: `X` `(n_x, m)` as transposed rows, labels `(1, m)`."""
    rng = np.random.default_rng(seed)
    rows = rng.uniform(size=(m, n_x))
    Y = (rows[:, :1].T > 0.5).astype(np.float64)
    return rows.T, Y
