"""One prediction: from image bytes, through the shared preprocessing, to a label."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from itsacat.data import DecodedImage, decode_image, to_input_column
from itsacat.serving.swap.served import ServedModel


@dataclass(frozen=True)
class Prediction:
    """The answer to one picture; `probability` is that of the positive class (`cat`)."""

    label: str
    probability: float
    model_version: int | None
    slot: str
    frames_in_source: int  # animated or multi-page sources: only the first frame is used

    def to_json(self) -> dict[str, Any]:
        document = {"label": self.label, "probability": self.probability,
                    "model_version": self.model_version, "slot": self.slot}
        if self.frames_in_source > 1:
            document |= {"frames_used": 1, "frames_in_source": self.frames_in_source}
        return document


def classify(served: ServedModel, slot: str, data: bytes, name: str, max_pixels: int
             ) -> tuple[Prediction, DecodedImage]:
    """Decode `data` as training does and classify it with the snapshot `served`.

    Raises the data package's `ImageError` (400, 413 or 415) for pictures it cannot use.
    """
    decoded = decode_image(data, name, max_pixels)
    X = to_input_column(decoded.pixels, served.model.spec.dtype)  # (12288, 1)
    probability = float(served.model.predict_proba(X)[0])

    label = served.model.class_names[int(probability > 0.5)]
    return Prediction(label, probability, served.version, slot, decoded.frames), decoded
