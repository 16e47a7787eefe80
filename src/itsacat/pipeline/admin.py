"""The admin HTTP endpoint: read executions and record approvals, behind a bearer token.

    ITSACAT_ADMIN_TOKEN=secret itsacat up
    curl -H 'Authorization: Bearer secret' 127.0.0.1:8090/executions
    curl -H 'Authorization: Bearer secret' -H 'Content-Type: application/json' \\
         -d '{"by": "alice", "reason": "looks good"}' 127.0.0.1:8090/executions/ID/approve

Without ITSACAT_ADMIN_TOKEN every request is refused (503), so an endpoint started by mistake
grants nothing. The token is compared in constant time. The endpoint listens on its own port
(8090 by default), never on a prediction service's port.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.requests import Request

from itsacat.errors import ItsacatError
from itsacat.pipeline.approval import decide
from itsacat.registry import ApprovalDecision, Registry

log = logging.getLogger(__name__)

TOKEN_VARIABLE = "ITSACAT_ADMIN_TOKEN"


class AdminError(ItsacatError):
    def __init__(self, code: str, message: str, http_status: int):
        super().__init__(code, message)
        self.http_status = http_status


class DecisionRequest(BaseModel):
    """Who decides and why; both are recorded with the approval."""

    by: str = Field(min_length=1, max_length=255)
    reason: str = Field(min_length=1, max_length=2000)


def create_admin_app(registry: Registry, token: str | None = None) -> FastAPI:
    """Build the admin app; `token` defaults to $ITSACAT_ADMIN_TOKEN, read at each request.

    A recorded decision is applied by the pipeline worker at its next poll.
    """
    # No /docs or /openapi.json: without the token the endpoint describes nothing either.
    app = FastAPI(title="itsacat pipeline admin", description="Executions and approvals.",
                  docs_url=None, redoc_url=None, openapi_url=None)

    def authorize(authorization: Annotated[str | None, Header()] = None) -> None:
        expected = token if token is not None else os.environ.get(TOKEN_VARIABLE)
        if not expected:
            raise AdminError("admin_disabled", f"the admin endpoint is disabled: set "
                             f"{TOKEN_VARIABLE} where itsacat runs to enable it", 503)
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.encode(),
                                                                  expected.encode()):
            raise AdminError("unauthorized", "missing or wrong bearer token; send "
                             "'Authorization: Bearer <ITSACAT_ADMIN_TOKEN>'", 401)

    @app.exception_handler(ItsacatError)
    async def on_error(request: Request, error: ItsacatError) -> JSONResponse:
        log.info("admin %s %s: %s %s", request.method, request.url.path, error.http_status,
                 error.code)
        headers = {"WWW-Authenticate": "Bearer"} if error.http_status == 401 else None
        return JSONResponse({"error": error.code, "detail": error.message},
                            status_code=error.http_status, headers=headers)

    authorized = [Depends(authorize)]

    @app.get("/executions", dependencies=authorized)
    def list_executions(limit: int = 20) -> list[dict[str, Any]]:
        """List the newest executions. Example: `GET /executions?limit=5`"""
        return [execution.to_json() for execution in registry.list_executions(limit=limit)]

    @app.get("/executions/{execution_id}", dependencies=authorized)
    def get_execution(execution_id: str) -> dict[str, Any]:
        """Show one execution with its stages and approvals."""
        return registry.get_execution(execution_id).to_json()

    @app.post("/executions/{execution_id}/approve", dependencies=authorized)
    def approve(execution_id: str, request: DecisionRequest) -> dict[str, Any]:
        """Approve the promotion of an execution awaiting approval."""
        return _decide(execution_id, ApprovalDecision.approved, request)

    @app.post("/executions/{execution_id}/reject", dependencies=authorized)
    def reject(execution_id: str, request: DecisionRequest) -> dict[str, Any]:
        """Reject the promotion of an execution awaiting approval; blue stays as it is."""
        return _decide(execution_id, ApprovalDecision.rejected, request)

    def _decide(execution_id: str, decision: ApprovalDecision,
                request: DecisionRequest) -> dict[str, Any]:
        approval = decide(registry, execution_id, decision, by=request.by,
                          reason=request.reason)
        log.info("admin: execution %s %s by %s", execution_id, decision, request.by)
        return approval.to_json()

    return app


class AdminServer:
    """The admin app on uvicorn in a background thread of this process."""

    def __init__(self, app: FastAPI, host: str, port: int):
        import uvicorn

        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
        self.server = uvicorn.Server(config)
        self.url = f"http://{host}:{port}"
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="admin")

    def start(self, timeout: float = 10.0) -> None:
        """Start serving; raise `AdminError` when it has not started within `timeout` s."""
        self.thread.start()
        pause = threading.Event()
        for _ in range(int(timeout / 0.05)):
            if self.server.started or not self.thread.is_alive():
                break
            pause.wait(0.05)
        if not self.server.started:
            raise AdminError("admin_not_started", f"the admin endpoint did not start on "
                             f"{self.url}; is the port in use?", 500)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
