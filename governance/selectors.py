"""Reads about the platform's own health, shared by /readyz and the governance page."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Case, CharField, Count, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone

from accounts.models import User
from accounts.selectors import is_platform_admin, tenants_visible_to
from governance.choices import STATE_ORDER, WaiverState
from governance.errors import NotFound
from governance.events.models import Event
from governance.models import Waiver, WorkerHeartbeat


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


# --- waivers -------------------------------------------------------------------------------


def holders_of(tenant: Any, roles: Iterable[str]) -> QuerySet[User]:
    """Active people holding any of ``roles`` in ``tenant`` (platform-wide grants included)."""
    return (
        User.objects.filter(
            is_active=True,
            role_grants__revoked_at__isnull=True,
            role_grants__role__in=list(roles),
        )
        .filter(Q(role_grants__tenant=tenant) | Q(role_grants__tenant__isnull=True))
        .distinct()
    )


def waivers_visible_to(user: Any) -> QuerySet[Waiver]:
    qs = Waiver.objects.select_related(
        "tenant", "owner", "granted_by", "countersigned_by", "revoked_by", "change", "renews"
    ).prefetch_related("artifacts__artifact_class", "artifacts__tenant")
    if is_platform_admin(user):
        return qs
    return qs.filter(tenant__in=tenants_visible_to(user))


def waiver_by_reference(reference: str, *, visible_to: Any = None) -> Waiver:
    """``WV-2026-0007`` (or its UUID) if the user may see it; otherwise NotFound."""
    text = (reference or "").strip().upper()
    parts = text.split("-")
    qs = (
        waivers_visible_to(visible_to)
        if visible_to is not None
        else Waiver.objects.select_related("tenant", "owner", "change", "renews")
    )
    waiver = None
    if len(parts) == 3 and parts[0] == "WV" and parts[1].isdigit() and parts[2].isdigit():
        waiver = qs.filter(year=int(parts[1]), number=int(parts[2])).first()
    else:
        try:
            waiver = qs.filter(pk=uuid.UUID(reference.strip())).first()
        except ValueError:
            waiver = None
    if waiver is None:
        raise NotFound(f"No waiver {reference}.", field="reference")
    return waiver


def waiver_state_case(now: datetime) -> Case:
    """The derived state as a database expression, so lists can filter and sort by it."""
    soon = now + timedelta(days=settings.WAIVER_EXPIRING_SOON_DAYS)
    return Case(
        When(revoked_at__lte=now, then=Value(WaiverState.REVOKED)),
        When(expires_at__lte=now, then=Value(WaiverState.EXPIRED)),
        When(needs_security=True, countersigned_at__isnull=True, then=Value(WaiverState.PENDING)),
        When(expires_at__lte=soon, then=Value(WaiverState.EXPIRING_SOON)),
        default=Value(WaiverState.ACTIVE),
        output_field=CharField(),
    )


def waivers_by_state(qs: QuerySet[Waiver], now: datetime) -> QuerySet[Waiver]:
    """``qs`` annotated with ``state`` and ``state_rank``: expiring soon first, then by expiry."""
    order = Case(
        *(When(state=state, then=Value(i)) for i, state in enumerate(STATE_ORDER)),
        output_field=IntegerField(),
    )
    return (
        qs.annotate(state=waiver_state_case(now))
        .annotate(state_rank=order)
        .order_by("state_rank", "expires_at", "year", "number")
    )


def waiver_state_counts(tenants: Any, now: datetime) -> dict[str, int]:
    """How many waivers are in each state (one query)."""
    qs = Waiver.objects.all() if tenants is None else Waiver.objects.filter(tenant__in=tenants)
    rows = qs.annotate(state=waiver_state_case(now)).values("state").annotate(n=Count("pk"))
    counts = dict.fromkeys(WaiverState.values, 0)
    counts.update({row["state"]: row["n"] for row in rows})
    return counts


def waiver_lineage(waiver: Waiver) -> list[Waiver]:
    """The waiver with what it renewed and what renewed it, oldest first."""
    chain = [waiver]
    back = waiver
    while back.renews_id is not None:
        back = Waiver.objects.select_related("owner", "granted_by").get(pk=back.renews_id)
        chain.insert(0, back)
    forward = waiver
    while True:
        nxt = Waiver.objects.select_related("owner", "granted_by").filter(renews=forward).first()
        if nxt is None:
            break
        chain.append(nxt)
        forward = nxt
    return chain


def waiver_events(waivers: Iterable[Waiver]) -> QuerySet[Event]:
    """The log entries about these waivers, oldest first."""
    return Event.objects.filter(
        subject_type="governance.waiver", subject_id__in=[str(w.pk) for w in waivers]
    ).order_by("seq")


def waivers_in_scope(change: Any) -> list[Waiver]:
    """Every waiver of the change's tenant whose scope covers the change, whatever its state."""
    artifact_ids = set(change.items.values_list("artifact_id", flat=True))
    candidates = (
        Waiver.objects.filter(tenant_id=change.tenant_id)
        .filter(Q(change=change) | Q(change__isnull=True, artifacts__in=artifact_ids))
        .select_related("owner", "granted_by", "countersigned_by")
        .prefetch_related("artifacts")
        .distinct()
        .order_by("-expires_at")
    )
    found = []
    for waiver in candidates:
        if waiver.change_id is not None or (
            artifact_ids and artifact_ids <= {a.pk for a in waiver.artifacts.all()}
        ):
            found.append(waiver)
    return found
