"""The project's URLs plus a bare Django JSON view, for benchmarks only (never mounted by the product).

``/bench/bare/`` answers GET and POST with a small JSON body and touches nothing else: no
database, no authentication, no DRF. It runs behind the same middleware as every other
view, so "the endpoint's requests/s over the bare view's" on one server measures what
the endpoint itself costs.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import URLPattern, URLResolver, include, path
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
@never_cache
def bare(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok", "method": request.method})


urlpatterns: list[URLPattern | URLResolver] = [
    path("bench/bare/", bare, name="bench-bare"),
    path("", include("governance.urls")),
]
