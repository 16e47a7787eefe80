"""The network spec: the network's shape and training settings, read from `parameters.json`.

The reference format loads unchanged::

    {"epochs": 2500, "layers": 4,
     "activations": {"layer1": "relu", ..., "layer4": "sigmoid"},
     "neurons": {"layer1": 20, "layer2": 7, "layer3": 5, "layer4": 1},
     "learning_rate": 0.0075, "batch_size": 64, "threshold": 0.0019}

Optional keys: `seed`, `strategy`, `dtype`. Unknown keys and bad values raise `SpecError`
naming the key, the value and what was expected.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from itsacat.nn.activations import ACTIVATIONS
from itsacat.nn.strategies import STRATEGIES

DTYPES = ("float32", "float64")

REQUIRED_KEYS = ("epochs", "layers", "activations", "neurons", "learning_rate", "batch_size",
                 "threshold")
OPTIONAL_DEFAULTS: dict[str, Any] = {"seed": 1, "strategy": "sequential", "dtype": "float64"}


class SpecError(ValueError):
    """A network spec that cannot be used; the message names the source, key and value."""

    code = "invalid_spec"


@dataclass(frozen=True)
class NetworkSpec:
    """The network's shape and training settings.

    `neurons[l - 1]` and `activations[l - 1]` describe layer l (1-based, as in `W[l]`).
    """

    neurons: tuple[int, ...]
    activations: tuple[str, ...]
    epochs: int
    learning_rate: float
    batch_size: int
    threshold: float
    seed: int = 1
    strategy: str = "sequential"
    dtype: str = "float64"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def layers(self) -> int:
        return len(self.neurons)

    def with_overrides(self, **changes: Any) -> NetworkSpec:
        """Return a copy with the given settings replaced and validated again."""
        changes = {key: value for key, value in changes.items() if value is not None}
        document = self.to_json() | changes
        return parse_spec(document, source="overrides")

    def to_json(self) -> dict[str, Any]:
        """Return the spec in the reference `parameters.json` layout, plus the optional keys."""
        names = [f"layer{l}" for l in range(1, self.layers + 1)]
        values = asdict(self)
        return {
            "epochs": self.epochs,
            "layers": self.layers,
            "activations": dict(zip(names, self.activations, strict=True)),
            "neurons": dict(zip(names, self.neurons, strict=True)),
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "threshold": self.threshold,
        } | {key: values[key] for key in OPTIONAL_DEFAULTS}


def load_spec(path: str | Path) -> NetworkSpec:
    """Read and validate a network spec from a `parameters.json` file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"network spec {path}: file not found; pass --params with the path "
                        "of a parameters.json file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(f"network spec {path}: cannot read the file ({error})") from None
    return parse_spec(_decode_json(text, str(path)), source=str(path))


def _decode_json(text: str, source: str) -> Any:
    """Decode JSON strictly: duplicate keys and NaN/Infinity literals are errors."""

    def reject_constant(name: str) -> None:
        raise SpecError(f"network spec {source}: {name} is not a valid JSON number; "
                        "use a finite number")

    def reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise SpecError(f"network spec {source}: key {key!r} appears twice; "
                                "keep one of them")
            seen[key] = value
        return seen

    try:
        return json.loads(text, object_pairs_hook=reject_duplicates,
                          parse_constant=reject_constant)
    except json.JSONDecodeError as error:
        raise SpecError(f"network spec {source}: invalid JSON at line {error.lineno} "
                        f"column {error.colno}: {error.msg}") from None


def parse_spec(document: Any, source: str = "network spec") -> NetworkSpec:
    """Validate a decoded `parameters.json` document and build a `NetworkSpec`."""
    def fail(message: str) -> SpecError:
        return SpecError(f"network spec {source}: {message}")

    if not isinstance(document, dict):
        raise fail(f"expected a JSON object, found {type(document).__name__}")

    unknown = sorted(set(document) - set(REQUIRED_KEYS) - set(OPTIONAL_DEFAULTS))
    if unknown:
        allowed = ", ".join(REQUIRED_KEYS + tuple(OPTIONAL_DEFAULTS))
        raise fail(f"unknown key {unknown[0]!r}; the keys are {allowed}")
    missing = [key for key in REQUIRED_KEYS if key not in document]
    if missing:
        raise fail(f"missing key {missing[0]!r}")

    layers = _integer(document, "layers", fail, minimum=1)
    neurons = _per_layer(document, "neurons", layers, fail)
    activations = _per_layer(document, "activations", layers, fail)

    for l, count in enumerate(neurons, start=1):
        if isinstance(count, bool) or not isinstance(count, int):
            raise fail(f"neurons.layer{l} must be an integer, found {count!r}")
        if count <= 0:
            raise fail(f"neurons.layer{l} must be a positive integer, found {count}")
    for l, name in enumerate(activations, start=1):
        if name not in ACTIVATIONS:
            raise fail(f"activations.layer{l} is {name!r}; expected one of "
                       f"{', '.join(ACTIVATIONS)}")
    if neurons[-1] != 1 or activations[-1] != "sigmoid":
        raise fail(f"the output layer (layer{layers}) must be one sigmoid neuron, found "
                   f"{neurons[-1]} {activations[-1]} neuron(s); binary classification needs "
                   "a single probability")

    settings = {key: document.get(key, default) for key, default in OPTIONAL_DEFAULTS.items()}
    if settings["strategy"] not in STRATEGIES:
        raise fail(f"strategy is {settings['strategy']!r}; expected one of "
                   f"{', '.join(STRATEGIES)}")
    if settings["dtype"] not in DTYPES:
        raise fail(f"dtype is {settings['dtype']!r}; expected one of {', '.join(DTYPES)}")

    return NetworkSpec(
        neurons=tuple(neurons),
        activations=tuple(activations),
        epochs=_integer(document, "epochs", fail, minimum=1),
        learning_rate=_number(document, "learning_rate", fail, positive=True),
        batch_size=_integer(document, "batch_size", fail, minimum=1),
        threshold=_number(document, "threshold", fail, positive=False),
        seed=_integer(settings, "seed", fail, minimum=0),
        strategy=settings["strategy"],
        dtype=settings["dtype"],
    )


def _per_layer(document: dict, key: str, layers: int, fail) -> list[Any]:
    """Read `{"layer1": …, …, "layerL": …}` in layer order, checking that it covers every layer."""
    entries = document[key]
    if not isinstance(entries, dict):
        raise fail(f"{key} must be an object like {{\"layer1\": …}}, found "
                   f"{type(entries).__name__}")
    expected = [f"layer{l}" for l in range(1, layers + 1)]
    if sorted(entries) != sorted(expected):
        raise fail(f"layers is {layers} but {key} has entries {sorted(entries)}; "
                   f"expected exactly {expected}")
    return [entries[name] for name in expected]


def _integer(document: dict, key: str, fail, minimum: int) -> int:
    value = document[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(f"{key} must be an integer, found {value!r}")
    if value < minimum:
        raise fail(f"{key} must be at least {minimum}, found {value}")
    return value


def _number(document: dict, key: str, fail, positive: bool) -> float:
    value = document[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(f"{key} must be a number, found {value!r}")
    if not math.isfinite(value):
        raise fail(f"{key} must be finite, found {value!r}")
    if positive and value <= 0:
        raise fail(f"{key} must be positive, found {value}")
    if not positive and value < 0:
        raise fail(f"{key} must not be negative, found {value}")
    return float(value)
