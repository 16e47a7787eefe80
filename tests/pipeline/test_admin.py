"""The admin endpoint: token checks and approvals over real HTTP on 127.0.0.1."""

from __future__ import annotations

import httpx
import pytest

from itsacat.pipeline import ExecutionSettings, create_execution
from itsacat.pipeline.admin import AdminServer, create_admin_app
from itsacat.registry import ApprovalDecision, ExecutionStatus
from tests.pipeline.conftest import free_port, make_config, register_model

TOKEN = "s3cret-token"


@pytest.fixture
def admin(registry, monkeypatch):
    monkeypatch.setenv("ITSACAT_ADMIN_TOKEN", TOKEN)
    server = AdminServer(create_admin_app(registry), "127.0.0.1", free_port())
    server.start()
    yield server
    server.stop()


def waiting_execution(registry):
    version = register_model(registry, 0.8)
    settings = ExecutionSettings(kind="deliver", config=make_config(),
                                 model_version_id=version.id)
    execution = create_execution(registry, settings, "test")
    registry.update_execution(execution.id, status=ExecutionStatus.awaiting_approval)
    return execution


def test_admin_without_token_set_refuses_every_request(admin, monkeypatch):
    monkeypatch.delenv("ITSACAT_ADMIN_TOKEN")

    response = httpx.get(admin.url + "/executions",
                         headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 503
    assert response.json()["error"] == "admin_disabled"


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", TOKEN])
def test_admin_wrong_token_is_unauthorized(admin, header):
    headers = {"Authorization": header} if header else {}

    response = httpx.get(admin.url + "/executions", headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_admin_approve_records_decision(admin, registry):
    execution = waiting_execution(registry)

    response = httpx.post(admin.url + f"/executions/{execution.id}/approve",
                          headers={"Authorization": f"Bearer {TOKEN}"},
                          json={"by": "alice", "reason": "report checked"})

    assert response.status_code == 200
    approvals = registry.get_execution(execution.id).approvals
    assert [(a.decision, a.by, a.reason) for a in approvals] == [
        (ApprovalDecision.approved, "alice", "report checked")]


def test_admin_decision_on_finished_execution_conflicts(admin, registry):
    execution = waiting_execution(registry)
    registry.update_execution(execution.id, status=ExecutionStatus.succeeded)

    response = httpx.post(admin.url + f"/executions/{execution.id}/reject",
                          headers={"Authorization": f"Bearer {TOKEN}"},
                          json={"by": "bob", "reason": "too late"})

    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"execution {execution.id} is succeeded, not awaiting_approval; only an execution "
        "whose gates passed can be approved or rejected")
    assert registry.get_execution(execution.id).approvals == ()


def test_admin_decision_without_reason_is_rejected(admin, registry):
    execution = waiting_execution(registry)

    response = httpx.post(admin.url + f"/executions/{execution.id}/approve",
                          headers={"Authorization": f"Bearer {TOKEN}"}, json={"by": "alice"})

    assert response.status_code == 422
    assert registry.get_execution(execution.id).approvals == ()


def test_admin_unknown_execution_is_not_found(admin):
    response = httpx.get(admin.url + "/executions/nope",
                         headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 404
    assert response.json()["error"] == "execution_not_found"


def test_admin_config_on_prediction_port_is_refused():
    with pytest.raises(Exception) as raised:
        make_config(admin__port=8000, services__blue_port=8000)

    assert "is a prediction port" in str(raised.value)
