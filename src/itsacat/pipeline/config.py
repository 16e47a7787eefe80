"""The delivery pipeline's settings, read from `itsacat.toml` and overridden by CLI flags.

The file is looked up in this order: `--config FILE`, `$ITSACAT_CONFIG`, `./itsacat.toml`,
`$ITSACAT_HOME/itsacat.toml`; without one, the defaults below apply. Unknown sections and
keys are errors that name them, so a typo never silently leaves a gate at its default.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from itsacat.errors import ItsacatError

APPROVAL_MODES = ("manual", "auto")
SMOKE_LABEL_MODES = ("blocking", "advisory")
DOCKER_MODES = ("auto", "off")


class ConfigError(ItsacatError):
    """A pipeline setting that is missing, unknown or out of range."""

    def __init__(self, message: str):
        super().__init__("invalid_pipeline_config", message)


@dataclass(frozen=True)
class ServiceConfig:
    """The addresses of the blue and green prediction services, and their reload timeout."""

    host: str = "127.0.0.1"
    blue_port: int = 8000
    green_port: int = 8080
    ready_timeout: float = 30.0  # seconds for a service to serve a newly promoted version

    def url(self, slot: str) -> str:
        port = self.blue_port if slot == "blue" else self.green_port
        return f"http://{self.host}:{port}"


@dataclass(frozen=True)
class TrainingConfig:
    """Training settings of the train stage, used where the trigger gives none."""

    engine: str = "vectorized"
    epochs: int | None = None  # overrides the spec's epochs when set
    seed: int | None = None
    checkpoint_every: int = 100
    report: bool = True  # write the run's HTML report in the evaluate stage


@dataclass(frozen=True)
class GateConfig:
    """The checks a candidate must pass before it may be promoted to blue."""

    min_test_accuracy: float = 0.6
    max_regression: float = 0.02  # how far below blue's test accuracy a candidate may fall
    smoke_images: str | None = None  # a folder with labels.csv (file,label[,note])
    smoke_labels: str = "advisory"  # "blocking": a wrong label on a smoke image fails the gate
    latency_budget_ms: float = 2000.0  # the slowest smoke request may take this long


@dataclass(frozen=True)
class NotifyConfig:
    """Notification targets besides the log, and the retry policy of webhooks."""

    webhooks: tuple[str, ...] = ()
    retries: int = 3  # attempts after the first one
    backoff_seconds: float = 0.5  # doubles after every failed attempt
    timeout_seconds: float = 5.0


@dataclass(frozen=True)
class AdminConfig:
    """The admin HTTP endpoint for approvals; it needs ITSACAT_ADMIN_TOKEN to accept anything."""

    host: str = "127.0.0.1"
    port: int = 8090


@dataclass(frozen=True)
class InboxConfig:
    """The watched folder that starts a full execution when a data set arrives."""

    poll_seconds: float = 1.0
    stable_polls: int = 2  # polls with the same size and mtime before a file counts as complete
    invalid_after_seconds: float = 60.0  # a stable file that still fails to open is rejected


@dataclass(frozen=True)
class PipelineConfig:
    """Every setting of the delivery pipeline; `approval` is `manual` or `auto`."""

    approval: str = "manual"
    docker: str = "auto"  # "off" skips the image build even when an engine responds
    services: ServiceConfig = field(default_factory=ServiceConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    gates: GateConfig = field(default_factory=GateConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    inbox: InboxConfig = field(default_factory=InboxConfig)
    source: str = "defaults"  # the file the settings came from, for messages

    def __post_init__(self) -> None:
        _check_choice("pipeline.approval", self.approval, APPROVAL_MODES)
        _check_choice("pipeline.docker", self.docker, DOCKER_MODES)
        _check_choice("gates.smoke_labels", self.gates.smoke_labels, SMOKE_LABEL_MODES)
        if not 0.0 <= self.gates.min_test_accuracy <= 1.0:
            raise ConfigError(f"gates.min_test_accuracy = {self.gates.min_test_accuracy} is "
                              "not between 0 and 1")
        if not 0.0 <= self.gates.max_regression <= 1.0:
            raise ConfigError(f"gates.max_regression = {self.gates.max_regression} is not "
                              "between 0 and 1")
        if self.admin.port in (self.services.blue_port, self.services.green_port):
            raise ConfigError(f"admin.port = {self.admin.port} is a prediction port; the admin "
                              "endpoint needs a port of its own (default 8090)")
        if self.services.blue_port == self.services.green_port:
            raise ConfigError(f"blue and green both use port {self.services.blue_port}; give "
                              "each slot its own port")

    def replace(self, **changes: Any) -> PipelineConfig:
        """Return a copy with top-level fields or `section__key` fields changed; None keeps."""
        top: dict[str, Any] = {}
        sections: dict[str, dict[str, Any]] = {}
        for name, value in changes.items():
            if value is None:
                continue
            section, _, key = name.partition("__")
            if key:
                sections.setdefault(section, {})[key] = value
            else:
                top[name] = value
        for section, values in sections.items():
            top[section] = dataclasses.replace(getattr(self, section), **values)
        return dataclasses.replace(self, **top)

    def to_json(self) -> dict[str, Any]:
        document = dataclasses.asdict(self)
        document["notify"]["webhooks"] = list(self.notify.webhooks)
        return document

    @classmethod
    def from_json(cls, document: dict[str, Any], source: str) -> PipelineConfig:
        """Build the settings from a dict shaped like `itsacat.toml` or `to_json`."""
        document = dict(document)
        top: dict[str, Any] = {}
        pipeline_section = document.pop("pipeline", {})
        _check_keys("[pipeline]", pipeline_section, {"approval", "docker"}, source)
        top |= pipeline_section
        for name in ("approval", "docker"):
            if name in document:
                top[name] = document.pop(name)
        document.pop("source", None)

        for name, section_class in SECTIONS.items():
            values = document.pop(name, {})
            if not isinstance(values, dict):
                raise ConfigError(f"{source}: [{name}] must be a table, not {values!r}")
            known = {f.name for f in dataclasses.fields(section_class)}
            _check_keys(f"[{name}]", values, known, source)
            if name == "notify" and "webhooks" in values:
                values = values | {"webhooks": _webhooks(values["webhooks"], source)}
            _check_types(name, values, section_class, source)
            top[name] = section_class(**values)
        if document:
            raise ConfigError(f"{source}: unknown section or key {sorted(document)[0]!r}; "
                              f"known sections are pipeline, {', '.join(SECTIONS)}")
        return cls(source=source, **top)


SECTIONS = {"services": ServiceConfig, "training": TrainingConfig, "gates": GateConfig,
            "notify": NotifyConfig, "admin": AdminConfig, "inbox": InboxConfig}


def find_config_file(explicit: str | Path | None, home: Path) -> Path | None:
    """Return the settings file to read, or None when there is none to read."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"pipeline settings file {path} not found; check --config")
        return path
    from_env = os.environ.get("ITSACAT_CONFIG")
    if from_env:
        path = Path(from_env)
        if not path.is_file():
            raise ConfigError(f"ITSACAT_CONFIG={from_env} is not a file")
        return path
    for candidate in (Path("itsacat.toml"), home / "itsacat.toml"):
        if candidate.is_file():
            return candidate
    return None


def load_config(explicit: str | Path | None, home: Path) -> PipelineConfig:
    """Read the pipeline settings (see the module docstring for where from)."""
    path = find_config_file(explicit, home)
    if path is None:
        return PipelineConfig()
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None
    smoke = document.get("gates", {}).get("smoke_images")
    if isinstance(smoke, str) and not Path(smoke).is_absolute():
        # A relative folder is read from the settings file's folder, not the working one.
        document["gates"]["smoke_images"] = str((path.parent / smoke).absolute())
    return PipelineConfig.from_json(document, str(path))


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} = {value!r} is not one of {', '.join(choices)}")


def _check_keys(section: str, values: dict[str, Any], known: set[str], source: str) -> None:
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r} in {section}; known keys are "
                          f"{', '.join(sorted(known))}")


def _check_types(section: str, values: dict[str, Any], section_class, source: str) -> None:
    """Raise `ConfigError` for a value whose type differs from the default's (ints may be
    given where floats are expected)."""
    defaults = section_class()
    for key, value in values.items():
        default = getattr(defaults, key)
        if default is None or isinstance(default, tuple):
            continue
        expected = (int, float) if isinstance(default, float) else type(default)
        if isinstance(value, bool) != isinstance(default, bool) or not isinstance(value,
                                                                                   expected):
            raise ConfigError(f"{source}: {section}.{key} = {value!r} is not of type "
                              f"{type(default).__name__}")


def _webhooks(value: Any, source: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(url, str) for url in value):
        raise ConfigError(f"{source}: notify.webhooks must be a list of URLs")
    for url in value:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{source}: webhook {url!r} is not an http:// or https:// URL")
    return tuple(value)
