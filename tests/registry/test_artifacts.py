"""The content-addressed artifact store and the model bundle: digests, atomic writes, and
refusing files whose content no longer matches."""

from __future__ import annotations

import hashlib

import pytest
from tests.registry.conftest import make_model

from itsacat.registry import ArtifactCorrupted, ArtifactStore, RegistryError
from itsacat.registry.artifacts import pack_model, unpack_model


def test_pack_model_identical_models_identical_bytes(small_spec):
    assert pack_model(make_model(small_spec, seed=4)) == pack_model(make_model(small_spec, seed=4))
    assert pack_model(make_model(small_spec, seed=4)) != pack_model(make_model(small_spec, seed=5))


def test_put_bytes_names_file_by_sha256_without_leftovers(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")

    digest = store.put_bytes(b"weights")
    again = store.put_bytes(b"weights")

    assert digest == again == hashlib.sha256(b"weights").hexdigest()
    files = [path for path in (tmp_path / "artifacts").rglob("*") if path.is_file()]
    assert files == [tmp_path / "artifacts" / "sha256" / digest[:2] / digest]
    assert store.read_bytes(digest) == b"weights"


def test_register_model_same_weights_share_one_artifact(registry, settings, small_spec):
    first = registry.register_model(make_model(small_spec), source="import")
    second = registry.register_model(make_model(small_spec), source="run")

    assert first.id != second.id
    assert first.artifact_sha256 == second.artifact_sha256
    artifact = settings.home / "artifacts" / "sha256" / first.artifact_sha256[:2] / (
        first.artifact_sha256)
    assert hashlib.sha256(artifact.read_bytes()).hexdigest() == first.artifact_sha256


def test_load_model_corrupted_artifact_raises_naming_file(registry, settings, small_spec):
    version = registry.register_model(make_model(small_spec), source="import")
    path = settings.home / "artifacts" / "sha256" / version.artifact_sha256[:2] / (
        version.artifact_sha256)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    actual = hashlib.sha256(bytes(data)).hexdigest()

    with pytest.raises(ArtifactCorrupted) as raised:
        registry.load_model(version)

    assert raised.value.code == "artifact_corrupted"
    assert raised.value.http_status == 500
    assert raised.value.path == str(path)
    assert str(raised.value) == (
        f"artifact {path} is corrupted: its sha256 is {actual}, expected "
        f"{version.artifact_sha256}; the file was modified or damaged, so restore it from a "
        "backup or register the model version again from its run")


def test_load_model_missing_artifact_raises_naming_file(registry, settings, small_spec):
    version = registry.register_model(make_model(small_spec), source="import")
    path = settings.home / "artifacts" / "sha256" / version.artifact_sha256[:2] / (
        version.artifact_sha256)
    path.unlink()

    with pytest.raises(RegistryError) as raised:
        registry.load_model(version.id)

    assert raised.value.code == "artifact_not_found"
    assert raised.value.http_status == 404
    assert str(raised.value) == (
        f"artifact {path} (sha256 {version.artifact_sha256}) is missing from "
        f"{settings.home / 'artifacts'}; restore the folder from a backup or register the "
        "model version again from its run")


def test_unpack_model_not_a_bundle_raises():
    with pytest.raises(RegistryError) as raised:
        unpack_model(b"not a tar file at all" * 40, "artifacts/sha256/ab/abcd")

    assert raised.value.code == "invalid_artifact"
    assert str(raised.value).startswith("artifact artifacts/sha256/ab/abcd is not a model "
                                        "bundle (")
    assert str(raised.value).endswith("); expected a tar of parameters.json, classes.json, "
                                      "params.h5")


def test_path_of_invalid_digest_raises(tmp_path):
    with pytest.raises(RegistryError) as raised:
        ArtifactStore(tmp_path).path_of("../../etc/passwd")

    assert raised.value.code == "invalid_digest"
    assert str(raised.value) == ("artifact digest '../../etc/passwd' is not a sha256 digest "
                                 "(64 lowercase hexadecimal characters)")
