"""Releases: the model version, the app version and the pipeline settings under one digest,
and the optional container image built from the project's Dockerfile."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from itsacat import __version__
from itsacat.nn.io import write_json_atomic
from itsacat.pipeline.stages import StageContext, StageFailed, StageSkipped

DOCKER_INFO_SECONDS = 10.0
DOCKER_BUILD_SECONDS = 900.0
# The Dockerfile sits at the project root, two folders above src/itsacat/pipeline.
PROJECT_ROOT = Path(__file__).resolve().parents[3]


def release_manifest(context: StageContext) -> dict[str, Any]:
    """Describe what a release bundles; webhook URLs are left out as they may hold secrets."""
    version = context.registry.get_version(context.model_version_id())
    config = context.config.to_json()
    config.pop("notify")
    config.pop("source")
    return {"model_version": version.id, "artifact_sha256": version.artifact_sha256,
            "app_version": __version__, "config": config}


def release_digest(manifest: dict[str, Any]) -> str:
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()


def build_release(context: StageContext) -> dict[str, Any]:
    """Write the release manifest to the artifact store and to `$ITSACAT_HOME/releases`."""
    manifest = release_manifest(context)
    digest = release_digest(manifest)
    document = json.dumps(manifest, sort_keys=True, indent=2).encode()
    context.registry.artifacts.put_bytes(document)

    path = context.home / "releases" / f"{digest}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, manifest)
    context.log(f"release {digest[:12]}: model version {manifest['model_version']}, "
                f"itsacat {manifest['app_version']}")
    return {"release": digest, "manifest": str(path), "model_version_id": manifest["model_version"]}


def build_image(context: StageContext) -> dict[str, Any]:
    """Build a container image of the release when a Docker engine responds; skip otherwise."""
    if context.config.docker == "off":
        raise StageSkipped("the image build is switched off (pipeline.docker = \"off\")")
    engine_problem = docker_engine_problem()
    if engine_problem:
        raise StageSkipped(f"no Docker engine responds ({engine_problem}); the release is "
                           "served from the registry without an image")
    dockerfile = PROJECT_ROOT / "Dockerfile"
    if not dockerfile.is_file():
        raise StageSkipped(f"no Dockerfile at {dockerfile} (itsacat is installed, not "
                           "checked out)")

    release = context.outcomes["build_release"]["release"]
    tag = f"itsacat:{release[:12]}"
    context.log(f"building image {tag} from {dockerfile}")
    command = ["docker", "build", "--tag", tag, "--label", f"org.itsacat.release={release}",
               "--label", f"org.itsacat.model-version={context.model_version_id()}",
               str(PROJECT_ROOT)]
    try:
        result = subprocess.run(command, capture_output=True, text=True,
                                timeout=DOCKER_BUILD_SECONDS)
    except subprocess.TimeoutExpired:
        raise StageFailed(f"docker build of {tag} did not finish within "
                          f"{DOCKER_BUILD_SECONDS:.0f} s") from None
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise StageFailed(f"docker build of {tag} failed with status {result.returncode}: "
                          f"{tail}")
    return {"image": tag}


def docker_engine_problem() -> str | None:
    """Return why no Docker engine can build here, or None when one responds."""
    if shutil.which("docker") is None:
        return "the docker command is not installed"
    try:
        result = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                                capture_output=True, text=True, timeout=DOCKER_INFO_SECONDS)
    except subprocess.TimeoutExpired:
        return f"docker info did not answer within {DOCKER_INFO_SECONDS:.0f} s"
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        return lines[-1] if lines else f"docker info exited with status {result.returncode}"
    return None
