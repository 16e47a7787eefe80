"""`itsacat serve` as a user starts it: a subprocess on a free 127.0.0.1 port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from itsacat.registry import open_registry
from itsacat.settings import Settings

from .conftest import free_socket, make_model
from .test_routes import png_bytes, random_pixels


def itsacat(*args: str, env: dict[str, str] | None = None, **options) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "itsacat", *args], env=os.environ | (env or {}),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            **options)


@pytest.fixture
def home_with_blue_model(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    with open_registry(Settings.from_env(home)) as registry:
        version = registry.register_model(make_model(seed=8), source="import")
        registry.promote(version.id, "blue", expected=None, by="test", reason="serve it")
    return home


def test_serve_command_answers_predictions(home_with_blue_model):
    with free_socket() as probe:
        port = probe.getsockname()[1]
    server = itsacat("--home", str(home_with_blue_model), "serve", "--slot", "blue",
                     "--port", str(port), env={"ITSACAT_REGISTRY_URL": ""})
    try:
        ready = None
        for _ in range(600):
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
                break
            except httpx.ConnectError:
                assert server.poll() is None, server.stdout.read()
                time.sleep(0.05)
        answer = httpx.post(f"http://127.0.0.1:{port}/predict",
                            files={"file": ("cat.png", png_bytes(random_pixels()))})
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)

    assert ready is not None and ready.status_code == 200
    assert ready.json()["model_version"] == 1
    assert answer.status_code == 200
    assert answer.json()["model_version"] == 1
    assert answer.json()["slot"] == "blue"
    assert f"serving slot blue on http://127.0.0.1:{port} (1 worker)" in output
    assert "POST /predict 200 " in output


def test_serve_command_unreachable_registry_exits_2(tmp_path):
    # Port 1 on the loopback interface has no database, so the connection is refused at once.
    run = itsacat("--home", str(tmp_path), "serve", "--slot", "blue",
                  env={"ITSACAT_REGISTRY_URL": "postgresql+psycopg://itsacat@127.0.0.1:1/none"})
    output, _ = run.communicate(timeout=60)

    assert run.returncode == 2
    assert output.startswith("itsacat serve: error: ")
    assert "ITSACAT_REGISTRY_URL" in output
    assert "Traceback" not in output


def test_serve_command_invalid_setting_prints_one_line(tmp_path):
    run = itsacat("--home", str(tmp_path), "serve", "--slot", "green",
                  env={"ITSACAT_MAX_PIXELS": "lots"})
    output, _ = run.communicate(timeout=60)

    assert run.returncode == 2
    assert output == ("itsacat serve: error: ITSACAT_MAX_PIXELS='lots' is not a positive "
                      "number\n")


def test_serve_command_port_in_use_prints_one_line(home_with_blue_model):
    with free_socket() as taken:
        taken.listen()
        port = taken.getsockname()[1]
        run = itsacat("--home", str(home_with_blue_model), "serve", "--slot", "blue",
                      "--port", str(port))
        output, _ = run.communicate(timeout=60)

    assert run.returncode == 2
    assert output.endswith(f"itsacat serve: error: cannot start the blue service on "
                           f"127.0.0.1:{port}: Address already in use; stop what listens "
                           "there or choose another port\n")


def test_serve_command_missing_model_folder_exits_2(tmp_path):
    run = itsacat("--home", str(tmp_path), "serve", "--slot", "blue", "--model",
                  str(tmp_path / "nope"))
    output, _ = run.communicate(timeout=60)

    assert run.returncode == 2
    assert output == (f"itsacat serve: error: model {tmp_path / 'nope'}: not a folder; pass the "
                      "run folder or a folder with params.h5 and parameters.json\n")
