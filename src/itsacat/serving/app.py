"""The FastAPI app of one slot's prediction service.

    app = create_app(ServingSettings(slot="blue"), RegistrySlotSource(registry, "blue"))

`app_from_env` builds the same app from `ITSACAT_*` variables; `itsacat serve` starts it with
uvicorn as a factory, so each worker process builds its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request

from itsacat import __version__
from itsacat.errors import ItsacatError
from itsacat.serving.errors import (
    INVALID_REQUEST,
    METHOD_NOT_ALLOWED,
    ROUTE_NOT_FOUND,
    ServingError,
    error_response,
)
from itsacat.serving.metrics import RequestObserver
from itsacat.serving.routes import health, pages, predictions
from itsacat.serving.service import Service
from itsacat.serving.settings import ServingSettings
from itsacat.serving.swap import FolderSource, ModelSource, RegistrySlotSource
from itsacat.settings import Settings

log = logging.getLogger("itsacat.serving")


def create_app(settings: ServingSettings, source: ModelSource) -> FastAPI:
    """Build the app serving `source` under `settings`; the model loads when the app starts."""
    service = Service(settings, source)
    app = FastAPI(title=f"itsacat prediction service ({settings.slot})", version=__version__,
                  description="Is this a cat picture? One slot's model version, hot-swapped "
                              "when the slot changes.",
                  lifespan=_lifespan)
    app.state.service = service
    routers = (health.router, predictions.router, pages.router)
    for router in routers:
        app.include_router(router)
    _add_error_handlers(app)

    routes = frozenset([*(route.path for router in routers for route in router.routes),
                        app.openapi_url, app.docs_url, app.redoc_url])
    app.add_middleware(RequestObserver, metrics=service.metrics, routes=routes)
    return app


def app_from_env() -> FastAPI:
    """Build the app from the environment: a model folder if `ITSACAT_SERVE_MODEL` is set,
    otherwise the registry slot `ITSACAT_SLOT` of `ITSACAT_HOME`."""
    if not logging.getLogger("itsacat").handlers:
        from itsacat.training.progress import configure_logging
        configure_logging()
    settings = ServingSettings.from_env()
    return create_app(settings, source_for(settings))


def source_for(settings: ServingSettings) -> ModelSource:
    """Return the model source `settings` name: a model folder or a registry slot."""
    if settings.model_folder is not None:
        return FolderSource(settings.model_folder)
    from itsacat.registry import open_registry
    return RegistrySlotSource(open_registry(Settings.from_env()), settings.slot)


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI):
    service: Service = app.state.service
    await service.watcher.poll()
    if service.served is None:
        log.warning("slot %s: no model to serve yet from %s; /readyz returns 503 until one "
                    "loads", service.slot, service.source.description)
    else:
        log.info("slot %s: serving %s", service.slot, service.served.label)
    watching = asyncio.create_task(service.watcher.run(), name="slot watcher")
    try:
        yield
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching


def _add_error_handlers(app: FastAPI) -> None:
    """Render every error as `{"error", "detail"}` with the status its kind defines."""

    async def on_expected_error(request: Request, error: ItsacatError):
        log.debug("%s %s rejected: %s", request.method, request.url.path, error.message)
        return error_response(error)

    async def on_http_error(request: Request, error: HTTPException):
        kinds = {404: ROUTE_NOT_FOUND, 405: METHOD_NOT_ALLOWED}
        kind = kinds.get(error.status_code)
        if kind is None:
            return error_response(ServingError("http_error", str(error.detail),
                                               error.status_code))
        return error_response(kind.error(method=request.method, path=request.url.path))

    async def on_validation_error(request: Request, error: RequestValidationError):
        problems = "; ".join(f"{' '.join(str(part) for part in problem['loc'])}: "
                             f"{problem['msg']}" for problem in error.errors())
        return error_response(INVALID_REQUEST.error(reason=problems))

    async def on_unexpected_error(request: Request, error: Exception):
        log.exception("%s %s failed", request.method, request.url.path)
        return error_response(ServingError(
            "internal_error", f"the service failed on this request ({type(error).__name__}); "
            "the error is in its log", 500))

    app.add_exception_handler(ItsacatError, on_expected_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected_error)
