"""Deploying a candidate to green, and the smoke checks run against the green service.

The smoke checks record what they see and fail only when the service cannot respond: the
ping, one prediction on a generated picture that must come from the candidate, and one
prediction per labeled smoke image. Whether a label or a latency is good enough is the
gate stage's decision.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from itsacat.pipeline.services import ServiceError, wait_for_version
from itsacat.pipeline.stages import StageContext, StageFailed
from itsacat.registry import SlotConflict
from itsacat.registry.errors import describe_version

PING_TEXT = "Ping Successful!"
REQUEST_SECONDS = 30.0


def deploy_green(context: StageContext) -> dict[str, Any]:
    """Point the green slot at the candidate and wait until the green service serves it."""
    version_id = context.model_version_id()
    state = context.registry.slot_state("green")
    if state.version_id != version_id:
        try:
            context.registry.promote(version_id, "green", expected=state.version_id,
                                     by=f"pipeline {context.execution.id}",
                                     reason="deploy the candidate to staging")
        except SlotConflict as conflict:
            raise StageFailed(f"green changed while deploying: {conflict}") from None
        context.log(f"green: {describe_version(state.version_id)} -> model version "
                    f"{version_id}")

    url = context.config.services.url("green")
    try:
        waited = wait_for_version(url, version_id, context.config.services.ready_timeout)
    except ServiceError as error:
        raise StageFailed(str(error)) from None
    context.log(f"green service {url} serves model version {version_id} after {waited:.2f} s")
    return {"model_version_id": version_id, "url": url, "reload_seconds": round(waited, 3)}


def verify_green(context: StageContext) -> dict[str, Any]:
    """Ping the green service and run the smoke predictions; record every result."""
    version_id = context.model_version_id()
    url = context.config.services.url("green")
    checks: list[dict[str, Any]] = []
    with httpx.Client(base_url=url, timeout=REQUEST_SECONDS) as client:
        checks.append(_ping(client))
        checks.append(_predict(client, "generated gray picture", _gray_png(), None))
        for image in smoke_images(context.config.gates.smoke_images):
            checks.append(_predict(client, image["file"], image["path"].read_bytes(),
                                   image["label"]))

    for check in checks:
        context.log(_describe(check))
    outcome = {"url": url, "checks": checks,
               "max_latency_ms": max(check["latency_ms"] for check in checks)}
    broken = [check for check in checks if check["error"]]
    if broken:
        raise StageFailed(f"green service {url}: {broken[0]['name']}: {broken[0]['error']}",
                          outcome)
    stale = [check for check in checks if check.get("model_version") != version_id
             and check["name"] != "ping"]
    if stale:
        # NOTE: two executions deploying to green at once can swap the candidate out under
        # this check. The execution then fails here instead of verifying the wrong model.
        raise StageFailed(f"green returned {stale[0]['name']} from model version "
                          f"{stale[0].get('model_version')}, not the candidate {version_id}; "
                          "another execution changed green meanwhile", outcome)
    return outcome


def smoke_images(folder: str | None) -> list[dict[str, Any]]:
    """Read the labeled smoke images of `folder`/labels.csv (columns file,label[,note])."""
    if not folder:
        return []
    root = Path(folder)
    labels = root / "labels.csv"
    if not labels.is_file():
        raise StageFailed(f"smoke images folder {root} has no labels.csv (columns "
                          "file,label,note); fix gates.smoke_images")
    images = []
    with labels.open(newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            path = root / (row.get("file") or "")
            if not row.get("file") or not path.is_file():
                raise StageFailed(f"{labels}: smoke image {row.get('file')!r} not found in "
                                  f"{root}")
            images.append({"file": row["file"], "path": path, "label": row.get("label")})
    return images


def _ping(client: httpx.Client) -> dict[str, Any]:
    started = time.perf_counter()
    check: dict[str, Any] = {"name": "ping", "error": None}
    try:
        response = client.get("/")
        if response.status_code != 200 or response.text != PING_TEXT:
            check["error"] = (f"GET / answered {response.status_code} {response.text[:80]!r}, "
                              f"expected 200 {PING_TEXT!r}")
    except httpx.HTTPError as error:
        check["error"] = f"GET / failed: {type(error).__name__}: {error}"
    check["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return check


def _predict(client: httpx.Client, name: str, data: bytes,
             expected: str | None) -> dict[str, Any]:
    started = time.perf_counter()
    check: dict[str, Any] = {"name": name, "expected": expected, "error": None}
    try:
        response = client.post("/predict", files={"file": (name, data)})
        if response.status_code == 200:
            answer = response.json()
            check |= {"label": answer.get("label"), "probability": answer.get("probability"),
                      "model_version": answer.get("model_version")}
        else:
            check["error"] = f"POST /predict answered {response.status_code} {response.text[:200]}"
    except httpx.HTTPError as error:
        check["error"] = f"POST /predict failed: {type(error).__name__}: {error}"
    check["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return check


def _gray_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (128, 128, 128)).save(buffer, format="PNG")
    return buffer.getvalue()


def _describe(check: dict[str, Any]) -> str:
    if check["error"]:
        return f"{check['name']}: {check['error']} ({check['latency_ms']} ms)"
    if check["name"] == "ping":
        return f"ping: {PING_TEXT} ({check['latency_ms']} ms)"
    expected = f", expected {check['expected']}" if check["expected"] else ""
    return (f"{check['name']}: {check['label']} (p={check['probability']:.3f}{expected}, "
            f"model version {check['model_version']}, {check['latency_ms']} ms)")
