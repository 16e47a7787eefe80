"""Settings of the prediction service, each from an environment variable or a CLI flag.

`itsacat serve` writes its flags into the environment before it starts uvicorn, so every
worker process builds the same settings with `ServingSettings.from_env()`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from itsacat.errors import ItsacatError
from itsacat.serving.fetch import FetchPolicy, parse_allow_list

SLOTS = ("blue", "green")
DEFAULT_PORTS = {"blue": 8000, "green": 8080}

# A 6000×4000 camera picture is 24 million pixels; anything larger is refused from its header.
DEFAULT_MAX_PIXELS = 25_000_000
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class ServingSettings:
    """The slot or folder one prediction service serves, and the limits of its requests."""

    slot: str  # ITSACAT_SLOT: blue or green
    model_folder: Path | None = None  # ITSACAT_SERVE_MODEL: a model folder instead of the slot
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES  # ITSACAT_MAX_BODY_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS  # ITSACAT_MAX_PIXELS
    poll_seconds: float = 0.5  # ITSACAT_SLOT_POLL_SECONDS: how often the slot is checked
    fetch: FetchPolicy = field(default_factory=FetchPolicy)

    def __post_init__(self) -> None:
        if self.slot not in SLOTS:
            raise ItsacatError("invalid_setting", f"slot {self.slot!r} is not a slot; use "
                               f"{' or '.join(SLOTS)}")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServingSettings:
        """Read the settings from `ITSACAT_*` environment variables."""
        env = os.environ if environ is None else environ
        model_folder = env.get("ITSACAT_SERVE_MODEL")
        fetch = FetchPolicy(
            allow=parse_allow_list(env.get("ITSACAT_FETCH_ALLOW", "")),
            connect_timeout=_number(env, "ITSACAT_FETCH_CONNECT_TIMEOUT", 3.0),
            read_timeout=_number(env, "ITSACAT_FETCH_READ_TIMEOUT", 5.0),
            total_timeout=_number(env, "ITSACAT_FETCH_TIMEOUT", 10.0),
            max_bytes=int(_number(env, "ITSACAT_FETCH_MAX_BYTES", DEFAULT_MAX_BODY_BYTES)))
        return cls(
            slot=env.get("ITSACAT_SLOT", "blue"),
            model_folder=Path(model_folder) if model_folder else None,
            max_body_bytes=int(_number(env, "ITSACAT_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)),
            max_pixels=int(_number(env, "ITSACAT_MAX_PIXELS", DEFAULT_MAX_PIXELS)),
            poll_seconds=_number(env, "ITSACAT_SLOT_POLL_SECONDS", 0.5),
            fetch=fetch)


def _number(env, name: str, default: float) -> float:
    text = env.get(name)
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise ItsacatError("invalid_setting", f"{name}={text!r} is not a positive number")
    return value
