"""Notifications of pipeline events: one log line each, and a JSON POST to every webhook.

A webhook delivery is retried with exponential backoff on a connection error, a timeout or a
5xx response. A 4xx response is final, because sending the same request again cannot fix it.
A delivery that fails every attempt is logged and recorded, and never fails the release.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from itsacat.pipeline.config import NotifyConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """The result of sending one event to one webhook."""

    url: str
    delivered: bool
    attempts: int
    status_code: int | None
    error: str | None


class Notifier:
    """Sends events to the log and to the configured webhooks."""

    def __init__(self, config: NotifyConfig):
        self.config = config

    def send(self, event: str, execution_id: str, **fields: Any) -> list[Delivery]:
        """Log `event` and POST it as JSON to every webhook; return one delivery per webhook.

        The body is `{"event", "execution", "at", **fields}`, with `at` in ISO 8601 UTC.
        """
        body = {"event": event, "execution": execution_id,
                "at": datetime.now(UTC).isoformat()} | fields
        summary = " ".join(f"{key}={value}" for key, value in fields.items()
                           if not isinstance(value, (dict, list)))
        log.info("notify %s: execution %s %s", event, execution_id, summary)
        return [self._deliver(url, body) for url in self.config.webhooks]

    def _deliver(self, url: str, body: dict[str, Any]) -> Delivery:
        attempts, delay = 0, self.config.backoff_seconds
        status_code: int | None = None
        error: str | None = None
        with httpx.Client(timeout=self.config.timeout_seconds) as client:
            while attempts <= self.config.retries:
                attempts += 1
                try:
                    response = client.post(url, json=body)
                    status_code, error = response.status_code, None
                    if response.is_success:
                        return Delivery(url, True, attempts, status_code, None)
                    error = f"answered {response.status_code}"
                    if response.status_code < 500:
                        break
                except httpx.HTTPError as failure:
                    status_code, error = None, f"{type(failure).__name__}: {failure}"
                if attempts <= self.config.retries:
                    log.warning("webhook %s: attempt %d failed (%s); retrying in %.1f s", url,
                                attempts, error, delay)
                    time.sleep(delay)
                    delay *= 2
        log.error("webhook %s: event %s not delivered after %d attempts: %s", url,
                  body["event"], attempts, error)
        return Delivery(url, False, attempts, status_code, error)


def deliveries_json(deliveries: list[Delivery]) -> list[dict[str, Any]]:
    return [asdict(delivery) for delivery in deliveries]
