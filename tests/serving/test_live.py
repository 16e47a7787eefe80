"""The service under uvicorn on 127.0.0.1: hot swap under concurrent load, and uploads that
keep getting responses while URL fetches wait on a silent server."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from itsacat.data import decode_image, to_input_column
from itsacat.registry import open_registry
from itsacat.serving import ServingSettings, create_app
from itsacat.serving.swap import RegistrySlotSource, StaticSource
from itsacat.settings import Settings

from .conftest import LiveServer, make_model, served
from .remote import ScriptedServer, silent
from .test_fetch import loopback_policy
from .test_routes import png_bytes, random_pixels

CLIENTS = 16


@pytest.fixture
def registry(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    settings = Settings(home=home, registry_url=f"sqlite:///{home / 'registry.db'}",
                        param_store="memory")
    with open_registry(settings) as opened:
        yield opened


def gray_probe() -> bytes:
    """A 64×64 gray ramp, the probe every client posts."""
    ramp = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (64, 1))
    buffer = io.BytesIO()
    Image.fromarray(ramp, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def offline_probability(model, data: bytes) -> float:
    """The oracle: the model on the probe, computed here without the service."""
    pixels = decode_image(data, "probe").pixels
    return float(model.predict_proba(to_input_column(pixels, model.spec.dtype))[0])


def swap_count(url: str, outcome: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    found = re.search(rf'itsacat_model_swaps_total{{outcome="{outcome}"}} (\S+)', text)
    return float(found.group(1)) if found else 0.0


class Clients:
    """Threads that post the probe in a loop and record every response or failure."""

    def __init__(self, url: str, probe: bytes, count: int):
        self.url, self.probe = url, probe
        self.answers: list[list[dict]] = [[] for _ in range(count)]
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(count)]

    def _run(self, index: int) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self.stop.is_set():
                try:
                    response = http.post("/predict", files={"file": ("probe.png", self.probe)})
                except httpx.HTTPError as error:
                    self.failures.append(f"client {index}: {type(error).__name__}: {error}")
                    continue
                if response.status_code != 200:
                    self.failures.append(f"client {index}: {response.status_code} "
                                         f"{response.text}")
                    continue
                self.answers[index].append(response.json())

    def wait_until(self, condition, what: str) -> None:
        """Wait for `condition()` while the clients run; fail after 30 s, not a timing claim."""
        for _ in range(3000):
            if condition():
                return
            if self.stop.wait(0.01):
                break
        raise AssertionError(f"timed out waiting until {what}")

    def each_answered(self, minimum: int) -> bool:
        return all(len(answers) >= minimum for answers in self.answers)


def test_hot_swap_under_load_fails_no_request(registry, caplog):
    caplog.set_level(logging.INFO, logger="itsacat.serving.swap")
    probe = gray_probe()
    v1 = registry.register_model(make_model(seed=1), source="import")
    v2 = registry.register_model(make_model(seed=2), source="import")
    corrupted = registry.register_model(make_model(seed=3), source="import")
    wrong_shape = registry.register_model(make_model(seed=4, n_x=100), source="import")
    expected = {version.id: offline_probability(registry.load_model(version), probe)
                for version in (v1, v2)}
    assert expected[v1.id] != expected[v2.id]
    registry.promote(v1.id, "blue", expected=None, by="test", reason="first model")

    artifact = registry.artifacts.path_of(corrupted.artifact_sha256)
    os.chmod(artifact, 0o644)
    artifact.write_bytes(artifact.read_bytes()[:-100])

    settings = ServingSettings(slot="blue", poll_seconds=0.05)
    with LiveServer(create_app(settings, RegistrySlotSource(registry, "blue"))) as live:
        clients = Clients(live.url, probe, CLIENTS)
        for thread in clients.threads:
            thread.start()
        try:
            clients.wait_until(lambda: clients.each_answered(5), "every client has answers")
            registry.promote(v2.id, "blue", expected=v1.id, by="test", reason="swap")
            clients.wait_until(lambda: all(a and a[-1]["model_version"] == v2.id
                                           for a in clients.answers), "every client sees v2")

            registry.promote(corrupted.id, "blue", expected=v2.id, by="test",
                             reason="a truncated artifact")
            clients.wait_until(lambda: swap_count(live.url, "rejected") == 1,
                               "the truncated candidate is rejected")
            registry.promote(wrong_shape.id, "blue", expected=corrupted.id, by="test",
                             reason="a model of the wrong shape")
            clients.wait_until(lambda: swap_count(live.url, "rejected") == 2,
                               "the wrong-shape candidate is rejected")

            answered = [len(answers) for answers in clients.answers]
            clients.wait_until(lambda: all(len(a) >= n + 5 for a, n in
                                           zip(clients.answers, answered, strict=True)),
                               "every client has answers after the rejections")
        finally:
            clients.stop.set()
            for thread in clients.threads:
                thread.join()
        ready = httpx.get(f"{live.url}/readyz").json()
        metrics = httpx.get(f"{live.url}/metrics").text

    assert clients.failures == []
    for answers in clients.answers:
        versions = [answer["model_version"] for answer in answers]
        assert set(versions) <= {v1.id, v2.id}
        for answer in answers:
            assert answer["probability"] == expected[answer["model_version"]]
        first_v2 = versions.index(v2.id)
        assert v1.id not in versions[first_v2:]
    assert ready["model_version"] == v2.id
    assert f'itsacat_model_version{{slot="blue"}} {v2.id}.0' in metrics
    assert 'itsacat_model_swaps_total{outcome="swapped"} 2.0' in metrics
    assert 'itsacat_model_swaps_total{outcome="rejected"} 2.0' in metrics

    rejections = [record.getMessage() for record in caplog.records
                  if record.levelno == logging.ERROR]
    assert len(rejections) == 2
    assert f"{artifact} is corrupted" in rejections[0]
    assert rejections[0].endswith("still serving v2")
    assert ("the first layer takes 100 inputs, expected 12288 (64×64×3 pixels)"
            in rejections[1])


def test_slot_empty_at_start_becomes_ready_after_promotion(registry):
    version = registry.register_model(make_model(seed=5), source="import")
    settings = ServingSettings(slot="green", poll_seconds=0.05)

    with LiveServer(create_app(settings, RegistrySlotSource(registry, "green"))) as live:
        before = httpx.get(f"{live.url}/readyz")
        registry.promote(version.id, "green", expected=None, by="test", reason="first")
        for _ in range(3000):
            after = httpx.get(f"{live.url}/readyz")
            if after.status_code == 200:
                break

    assert before.status_code == 503
    assert after.status_code == 200
    assert after.json()["model_version"] == version.id


def test_uploads_answered_while_url_fetches_wait(model):
    picture = png_bytes(random_pixels(13))

    async def scenario(url: str, slow: ScriptedServer):
        async with httpx.AsyncClient(base_url=url, timeout=30,
                                     limits=httpx.Limits(max_connections=64)) as http:
            fetches = [asyncio.create_task(http.post("/predict", json={
                "url": f"{slow.origin}/cat.jpg"})) for _ in range(32)]
            while len(slow.requests) < 32:
                finished = [fetch.result() for fetch in fetches if fetch.done()]
                assert finished == [], [response.text for response in finished]
                await asyncio.sleep(0.01)
            uploads = [await http.post("/predict", content=picture) for _ in range(10)]
            still_waiting = sum(not fetch.done() for fetch in fetches)
            return uploads, still_waiting, await asyncio.gather(*fetches)

    with ScriptedServer(silent) as slow:
        settings = ServingSettings(slot="blue", fetch=loopback_policy(
            slow, read_timeout=2.0, total_timeout=3.0))
        with LiveServer(create_app(settings, StaticSource(served(model)))) as live:
            uploads, still_waiting, fetched = asyncio.run(scenario(live.url, slow))

    assert [response.status_code for response in uploads] == [200] * 10
    assert still_waiting == 32
    assert {response.status_code for response in fetched} == {400}
    assert {response.json()["error"] for response in fetched} == {"fetch_timed_out"}
