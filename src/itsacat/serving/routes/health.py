"""Liveness, readiness, metrics and the reference API's ping."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from itsacat.serving.errors import MODEL_NOT_READY, error_response
from itsacat.serving.routes import service_of
from itsacat.serving.service import Service

router = APIRouter()
ServiceDependency = Annotated[Service, Depends(service_of)]


@router.get("/", response_class=PlainTextResponse, tags=["health"])
async def ping() -> str:
    """Return `Ping Successful!`, as the reference API does. Example: `curl 127.0.0.1:8000/`"""
    return "Ping Successful!"


@router.get("/healthz", tags=["health"])
async def healthz(service: ServiceDependency) -> dict:
    """Report that the process is up, whether or not a model is loaded."""
    return {"status": "ok", "slot": service.slot}


@router.get("/readyz", tags=["health"],
            responses={503: {"description": "no verified model is loaded yet"}})
async def readyz(service: ServiceDependency) -> Response:
    """Return 200 once a verified model is loaded, 503 before.

    Example: `curl 127.0.0.1:8000/readyz`
    """
    served = service.served
    if served is None:
        return error_response(MODEL_NOT_READY.error(slot=service.slot))
    return JSONResponse({"status": "ready", "slot": service.slot,
                         "model_version": served.version,
                         "artifact_sha256": served.artifact_digest})


@router.get("/metrics", tags=["health"], response_class=PlainTextResponse)
async def metrics(service: ServiceDependency) -> Response:
    """Expose Prometheus metrics: requests, latency, predictions by label, model version."""
    return Response(service.metrics.render(), media_type=service.metrics.content_type)
