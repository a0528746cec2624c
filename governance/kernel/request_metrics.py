"""Request latency as a Prometheus histogram: a small middleware, read by ``/metrics``.

Labelled by the URL pattern (``registry/<slug:cls>/...``, never the raw path, so the
label set stays bounded), the method and the status class. Per process: with several
gunicorn workers each answers for itself (a scrape reaches one of them).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from prometheus_client import CollectorRegistry, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

#: Seconds; from a cached page to a slow export.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUEST_SECONDS = Histogram(
    "governance_http_request_duration_seconds",
    "Time to answer an HTTP request, by URL pattern, method and status class",
    labelnames=["route", "method", "status"],
    buckets=BUCKETS,
    registry=REGISTRY,
)


class RequestLatencyMiddleware:
    """Times every request that matched a URL pattern (unmatched ones as ``unmatched``)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = match.route if match is not None and match.route else "unmatched"
        REQUEST_SECONDS.labels(
            route=route, method=request.method or "", status=f"{response.status_code // 100}xx"
        ).observe(time.perf_counter() - started)
        return response
