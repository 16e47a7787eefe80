"""Notifications to webhooks, against receivers started on 127.0.0.1."""

from __future__ import annotations

from itsacat.pipeline.config import NotifyConfig
from itsacat.pipeline.notify import Notifier
from tests.pipeline.conftest import Receiver, free_port


def test_notify_webhook_receives_event_json():
    with Receiver() as receiver:
        deliveries = Notifier(NotifyConfig(webhooks=(receiver.url,))).send(
            "execution_succeeded", "abc123", model_version=4)

    assert [delivery.delivered for delivery in deliveries] == [True]
    assert deliveries[0].attempts == 1
    body = receiver.bodies[0]
    assert body["event"] == "execution_succeeded"
    assert body["execution"] == "abc123"
    assert body["model_version"] == 4
    assert body["at"].endswith("+00:00")


def test_notify_server_error_retries_until_delivered():
    with Receiver(failures=2) as receiver:
        deliveries = Notifier(NotifyConfig(webhooks=(receiver.url,), retries=3,
                                           backoff_seconds=0.01)).send("x", "e1")

    assert deliveries[0].delivered
    assert deliveries[0].attempts == 3
    assert len(receiver.bodies) == 3


def test_notify_client_error_is_not_retried():
    with Receiver(status=404) as receiver:
        deliveries = Notifier(NotifyConfig(webhooks=(receiver.url,), retries=3,
                                           backoff_seconds=0.01)).send("x", "e1")

    assert not deliveries[0].delivered
    assert deliveries[0].attempts == 1
    assert deliveries[0].error == "answered 404"


def test_notify_unreachable_webhook_gives_up_after_retries():
    url = f"http://127.0.0.1:{free_port()}/hook"

    deliveries = Notifier(NotifyConfig(webhooks=(url,), retries=2,
                                       backoff_seconds=0.01)).send("x", "e1")

    assert not deliveries[0].delivered
    assert deliveries[0].attempts == 3
    assert deliveries[0].error.startswith("ConnectError")
