"""The HTML upload page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse

from itsacat.serving.pages import render_page
from itsacat.serving.routes import service_of
from itsacat.serving.service import Service

router = APIRouter(tags=["pages"])


@router.get("/upload", response_class=HTMLResponse)
async def upload_page(service: Annotated[Service, Depends(service_of)]) -> HTMLResponse:
    """Show a page to upload a picture and see its prediction. Open 127.0.0.1:8000/upload."""
    served = service.served
    return HTMLResponse(render_page(
        "upload.html", slot=service.slot, model=served.label if served else "not loaded yet",
        max_megabytes=f"{service.settings.max_body_bytes / 1024 / 1024:g}"))
