"""HTTP routes of the prediction service, one module per resource."""

from __future__ import annotations

from starlette.requests import Request

from itsacat.serving.service import Service


async def service_of(request: Request) -> Service:
    """Return the `Service` of the app handling `request` (a FastAPI dependency).

    Declared async so that FastAPI calls it inline rather than in a worker thread.
    """
    return request.app.state.service
