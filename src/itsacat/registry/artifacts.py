"""A content-addressed store of artifact files, named by their sha256, and the model bundle.

Layout: `ROOT/sha256/ab/abcdef…` for the file whose digest is `abcdef…`. A file is written
to a temporary name in the same file system, flushed to disk and renamed, so a crash leaves
either the whole file or none. Every read checks the digest again and raises
`ArtifactCorrupted` for a file that no longer matches. Two writers of the same content both
end with the one file.

A model version's artifact is a bundle: an uncompressed tar of the model folder that
`itsacat.nn.io.save_model` writes (params.h5, parameters.json, classes.json), with fixed
member order, times and owners, so that identical models give identical digests.

NOTE: params.h5 is written by h5py, so two installs with different HDF5 library versions may
write different bytes, and thus different digests, for the same weights.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile
import tempfile
from pathlib import Path

from itsacat.nn import Model
from itsacat.nn.io import CLASSES_FILE, PARAMS_FILE, SPEC_FILE, load_model, save_model
from itsacat.registry.errors import ArtifactCorrupted, RegistryError

CHUNK = 1 << 20
DIGEST_PATTERN = re.compile(r"[0-9a-f]{64}")
BUNDLE_MEMBERS = (SPEC_FILE, CLASSES_FILE, PARAMS_FILE)


class ArtifactStore:
    """Stores files by content under `root` (usually `$ITSACAT_HOME/artifacts`)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def put_bytes(self, data: bytes) -> str:
        """Store `data` and return its sha256 digest (64 lowercase hexadecimal characters)."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path_of(digest)
        if target.is_file() and _file_digest(target) == digest:
            return digest

        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{digest[:12]}.tmp-",
                                         delete=False) as writer:
            writer.write(data)
            writer.flush()
            os.fsync(writer.fileno())
        os.replace(writer.name, target)
        return digest

    def read_bytes(self, digest: str) -> bytes:
        """Return the content of the artifact `digest`, after checking that it still matches."""
        path = self.path_of(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise RegistryError("artifact_not_found", f"artifact {path} (sha256 {digest}) is "
                                f"missing from {self.root}; restore the folder from a backup "
                                "or register the model version again from its run") from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise ArtifactCorrupted(str(path), digest, actual)
        return data

    def path_of(self, digest: str) -> Path:
        """Return the path of the artifact `digest`, whether or not the file exists."""
        if not DIGEST_PATTERN.fullmatch(digest):
            raise RegistryError("invalid_digest", f"artifact digest {digest!r} is not a "
                                "sha256 digest (64 lowercase hexadecimal characters)")
        return self.root / "sha256" / digest[:2] / digest

    def put_model(self, model: Model) -> str:
        """Store `model` as a bundle and return the bundle's sha256."""
        return self.put_bytes(pack_model(model))

    def load_model(self, digest: str) -> Model:
        """Read and check the bundle `digest` and return the model in it."""
        return unpack_model(self.read_bytes(digest), str(self.path_of(digest)))


def pack_model(model: Model) -> bytes:
    """Write `model` as a deterministic tar of its model folder and return the bytes."""
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory() as folder:
        save_model(model, folder)
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as bundle:
            for name in BUNDLE_MEMBERS:
                data = (Path(folder) / name).read_bytes()
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o644, 0
                bundle.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def unpack_model(data: bytes, source: str) -> Model:
    """Read a model from bundle bytes; `source` names the bundle in error messages."""
    with tempfile.TemporaryDirectory() as folder:
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as bundle:
                # Only the known member names are extracted, so a bundle cannot write
                # anywhere else, whatever paths it contains.
                for name in BUNDLE_MEMBERS:
                    member = bundle.extractfile(name)
                    if member is None:
                        raise KeyError(name)
                    (Path(folder) / name).write_bytes(member.read())
        except (tarfile.TarError, KeyError) as error:
            raise RegistryError("invalid_artifact", f"artifact {source} is not a model "
                                f"bundle ({error}); expected a tar of "
                                f"{', '.join(BUNDLE_MEMBERS)}") from None
        return load_model(folder)


def _file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as reader:
        while chunk := reader.read(CHUNK):
            sha.update(chunk)
    return sha.hexdigest()
