"""The probes: /healthz (the process answers) and /readyz (database, broker, worker heartbeat)."""

from __future__ import annotations

import os
import time

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from governance.health import readiness

_STARTED = time.time()


@never_cache
@require_GET
def healthz(_request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Touches nothing else."""
    return JsonResponse(
        {"status": "ok", "pid": os.getpid(), "uptime_seconds": round(time.time() - _STARTED, 1)}
    )


@never_cache
@require_GET
def readyz(_request: HttpRequest) -> JsonResponse:
    """Readiness: database, broker and the last worker heartbeat; 503 if any fails."""
    checks = readiness()
    ok = all(check.ok for check in checks)
    return JsonResponse(
        {
            "status": "ok" if ok else "unavailable",
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
        },
        status=200 if ok else 503,
    )
