"""`POST /predict` (JSON) and `GET /image?image=URL` (an HTML page, as the reference API)."""

from __future__ import annotations

import base64
import io
import json
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from PIL import Image
from pydantic import BaseModel, Field

from itsacat.serving.fetch import fetch_image
from itsacat.serving.guards import read_image_input
from itsacat.serving.pages import render_page
from itsacat.serving.prediction import Prediction, classify_off_loop
from itsacat.serving.routes import service_of
from itsacat.serving.service import Service

router = APIRouter(tags=["predictions"])
ServiceDependency = Annotated[Service, Depends(service_of)]


class PredictionPublic(BaseModel):
    """The response body of `POST /predict`."""

    label: str = Field(examples=["cat"])
    probability: float = Field(description="probability of the positive class (cat)",
                               examples=[0.93])
    model_version: int | None = Field(description="registry model version; null for a model "
                                      "folder", examples=[3])
    slot: str = Field(examples=["blue"])
    frames_used: int | None = Field(None, description="present for animated or multi-page "
                                    "pictures: only the first frame is classified")
    frames_in_source: int | None = None


class ErrorPublic(BaseModel):
    """The body of every error response: a machine-readable code and a sentence saying what
    to do."""

    error: str = Field(examples=["empty_image"])
    detail: str = Field(examples=["uploaded file: the image is empty (0 bytes); check "
                                  "that the file or upload is complete"])


BINARY = {"schema": {"type": "string", "format": "binary"}}
PREDICT_REQUEST_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                       "properties": {"file": BINARY["schema"]}}},
    "image/*": BINARY,
    "application/octet-stream": BINARY,
    "application/json": {"schema": {"type": "object", "required": ["url"],
                                    "properties": {"url": {"type": "string",
                                                           "format": "uri"}}}},
}}}
ERROR_RESPONSES = {status: {"model": ErrorPublic, "description": description}
                   for status, description in (
                       (400, "undecodable, truncated or empty picture, or a rejected URL"),
                       (413, "body, remote file or pixel count over the limit"),
                       (415, "a picture format the service does not read"),
                       (503, "no verified model loaded yet"))}


@router.post("/predict", response_model=PredictionPublic, responses=ERROR_RESPONSES,
             openapi_extra=PREDICT_REQUEST_BODY)
async def predict(request: Request) -> Response:
    """Classify one picture sent as a multipart file, a raw body, or JSON `{"url": …}`.

    Example: `curl -F file=@cat.jpg 127.0.0.1:8000/predict`
    """
    # Looked up directly rather than through Depends(service_of), because on this hot path
    # FastAPI's dependency solving cost about a fifth of the request's CPU time.
    service: Service = request.app.state.service
    served = service.require_model()
    image = await read_image_input(request, service.settings.max_body_bytes,
                                   service.settings.fetch)
    prediction, _ = await classify_off_loop(served, service.slot, image.data, image.name,
                                            service.settings.max_pixels)
    _count(service, prediction)
    # Serialised here rather than through the response model, so the hot path skips
    # validation.
    return Response(json.dumps(prediction.to_json()), media_type="application/json")


@router.get("/image", response_class=HTMLResponse, responses=ERROR_RESPONSES)
async def image_page(service: ServiceDependency,
                     image: Annotated[str, Query(description="http(s) URL of a picture")]
                     ) -> HTMLResponse:
    """Fetch a picture by URL and show it with its prediction, as the reference API does.

    Example: `curl '127.0.0.1:8000/image?image=https://example.org/cat.jpg'`
    """
    served = service.require_model()
    data = await fetch_image(image, service.settings.fetch)
    prediction, decoded = await classify_off_loop(served, service.slot, data, image,
                                                  service.settings.max_pixels)
    _count(service, prediction)

    picture = io.BytesIO()
    Image.fromarray(decoded.pixels).save(picture, format="PNG")
    return HTMLResponse(render_page(
        "prediction.html", label=prediction.label, url=image, slot=service.slot,
        positive_class=served.model.class_names[1], model=served.label,
        probability=f"{prediction.probability:.4f}",
        picture=base64.b64encode(picture.getvalue()).decode("ascii"),
        frames=f", first of {decoded.frames} frames" if decoded.frames > 1 else ""))


def _count(service: Service, prediction: Prediction) -> None:
    version = prediction.model_version
    service.metrics.predictions.labels(prediction.label,
                                       "none" if version is None else str(version)).inc()
