"""The platform's own health: is the database up, the broker reachable, the worker beating?
Read by /readyz and the governance overview."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.utils import timezone

from governance.kernel.models import WorkerHeartbeat


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return Check("database", True, connection.vendor)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return Check("database", False, f"{type(exc).__name__}: {exc}")


def check_broker() -> Check:
    from governance.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            transport = conn.transport_cls
        return Check("broker", True, str(transport))
    except Exception as exc:  # noqa: BLE001
        return Check("broker", False, f"{type(exc).__name__}: {exc}")


def last_heartbeat() -> WorkerHeartbeat | None:
    return WorkerHeartbeat.objects.order_by("-last_beat_at").first()


def check_heartbeat(now: datetime | None = None) -> Check:
    now = now or timezone.now()
    try:
        beat = last_heartbeat()
    except Exception as exc:  # noqa: BLE001
        return Check("heartbeat", False, f"{type(exc).__name__}: {exc}")
    if beat is None:
        return Check("heartbeat", False, "no heartbeat yet: is the worker and beat running?")
    age = (now - beat.last_beat_at).total_seconds()
    stale_after = settings.HEARTBEAT_STALE_AFTER_SECONDS
    detail = f"{beat.worker} {age:.0f}s ago at {beat.last_beat_at.isoformat(timespec='seconds')}"
    if age > stale_after:
        return Check("heartbeat", False, f"stale (>{stale_after}s): {detail}")
    return Check("heartbeat", True, detail)


def readiness() -> list[Check]:
    database = check_database()
    checks = [database, check_broker()]
    checks.append(check_heartbeat() if database.ok else Check("heartbeat", False, "database down"))
    return checks
