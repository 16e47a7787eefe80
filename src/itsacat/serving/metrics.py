"""Prometheus metrics of one service, and the middleware that logs and counts each request.

Each app has its own `CollectorRegistry`, so several apps in one process (tests, embedding)
do not share counters.
"""

from __future__ import annotations

import logging
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

log = logging.getLogger("itsacat.serving.requests")

# Method labels come from this fixed set only, so a client cannot create new time series.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Request latencies on a loopback service are milliseconds, so the buckets span 1 ms to 10 s.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServiceMetrics:
    """The counters, histogram and gauges `/metrics` exposes."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, slot: str):
        self.slot = slot
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "itsacat_http_requests", "HTTP requests by route, method and status",
            ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram(
            "itsacat_http_request_duration_seconds", "Time from request start to the end of "
            "the response, by route", ["route"], buckets=LATENCY_BUCKETS,
            registry=self.registry)
        self.predictions = Counter(
            "itsacat_predictions", "Predictions by label and model version",
            ["label", "model_version"], registry=self.registry)
        self.model_version = Gauge(
            "itsacat_model_version", "The model version the slot serves (-1: none loaded, "
            "0: a model folder outside the registry)", ["slot"], registry=self.registry)
        self.swaps = Counter(
            "itsacat_model_swaps", "Hot swap attempts by outcome (swapped, rejected)",
            ["outcome"], registry=self.registry)
        self.model_version.labels(slot).set(-1)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RequestObserver:
    """ASGI middleware: one log line and one metric sample per HTTP request.

    Written as plain ASGI rather than with Starlette's BaseHTTPMiddleware, which adds a task
    and a memory stream per request on the hot path.
    """

    def __init__(self, app, metrics: ServiceMetrics, routes: frozenset[str]):
        self.app = app
        self.metrics = metrics
        self.routes = routes  # known paths; any other path is counted as "other"

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_observed(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            seconds = time.perf_counter() - started
            path, method = scope["path"], scope["method"]
            route = path if path in self.routes else "other"
            method_label = method if method in HTTP_METHODS else "other"
            self.metrics.requests.labels(route, method_label, str(status)).inc()
            self.metrics.latency.labels(route).observe(seconds)
            log.info("%s %s %d %.1f ms", method, path, status, seconds * 1000)
