"""Errors raised by the registry, each with its code and HTTP status defined once."""

from __future__ import annotations

from itsacat.errors import ItsacatError


class RegistryError(ItsacatError):
    """A registry request that cannot be served: an unknown id, a bad value, a failed write."""

    STATUS_BY_CODE = {"version_not_found": 404, "run_not_found": 404,
                      "execution_not_found": 404, "artifact_not_found": 404,
                      "already_in_slot": 409, "nothing_to_roll_back": 409,
                      "registry_unavailable": 503}

    def __init__(self, code: str, message: str):
        super().__init__(code, message)
        self.http_status = self.STATUS_BY_CODE.get(code, 400)


class SlotConflict(RegistryError):
    """A promotion whose expectation of the slot no longer holds: someone changed it first."""

    def __init__(self, slot: str, expected: int | None, current: int | None):
        expected_text = "an empty slot" if expected is None else f"model version {expected}"
        super().__init__("slot_conflict",
                         f"slot {slot} holds {describe_version(current)}, but the caller "
                         f"expected {expected_text}; another change came first, so read the slot "
                         f"again and retry with --expect {'none' if current is None else current}")
        self.http_status = 409
        self.slot = slot
        self.expected = expected
        self.current = current


class ArtifactCorrupted(RegistryError):
    """An artifact file whose content no longer matches the sha256 it was stored under."""

    def __init__(self, path: str, expected: str, actual: str):
        super().__init__("artifact_corrupted",
                         f"artifact {path} is corrupted: its sha256 is {actual}, expected "
                         f"{expected}; the file was modified or damaged, so restore it from a "
                         "backup or register the model version again from its run")
        self.http_status = 500
        self.path = path


def describe_version(version_id: int | None) -> str:
    """Name a slot's content in messages: `model version 3` or `no model version`."""
    return "no model version" if version_id is None else f"model version {version_id}"
