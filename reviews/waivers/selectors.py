"""Reads about waivers: by reference, by state, in scope of a change, and the list filters."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)

from accounts.selectors import tenant_scoped
from governance.kernel.errors import NotFound
from governance.kernel.events.models import Event
from reviews.waivers.choices import STATE_ORDER, WaiverState
from reviews.waivers.models import Waiver

if TYPE_CHECKING:
    from accounts.models import Tenant
    from reviews.models import ChangeRequest as ReviewChange


def _waiver_queryset() -> QuerySet[Waiver]:
    return Waiver.objects.select_related(
        "tenant", "owner", "granted_by", "countersigned_by", "revoked_by", "change", "renews"
    ).prefetch_related("artifacts__artifact_class", "artifacts__tenant")


def waivers_visible_to(user: Any) -> QuerySet[Waiver]:
    return tenant_scoped(_waiver_queryset(), user=user)


def waiver_by_reference(reference: str, *, visible_to: Any) -> Waiver:
    """``WV-2026-0007`` (or its UUID) if the user may see it; another tenant's reads as missing."""
    return _waiver_in(waivers_visible_to(visible_to), reference)


def waiver_by_reference_unscoped(reference: str) -> Waiver:
    """Any tenant's waiver: only for the CLI and system tasks, which act for the platform."""
    return _waiver_in(_waiver_queryset(), reference)


def _waiver_in(qs: QuerySet[Waiver], reference: str) -> Waiver:
    text = (reference or "").strip().upper()
    parts = text.split("-")
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


def waiver_state_counts(
    tenants: Iterable[Tenant] | QuerySet[Tenant], now: datetime
) -> dict[str, int]:
    """How many waivers of ``tenants`` are in each state (one query)."""
    qs = Waiver.objects.filter(tenant__in=tenants)
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


def waiver_list(user: Any, now: datetime) -> QuerySet[Waiver]:
    """The waivers ``user`` may see with their state at ``now``, expiring soon first."""
    return waivers_by_state(waivers_visible_to(user).select_related("renewal"), now)


def waiver_history(lineage: Sequence[Waiver]) -> QuerySet[Event]:
    """The log entries of a waiver's whole lineage, oldest first, without their signed bytes."""
    return waiver_events(lineage).defer("header", "payload_bytes")


def changes_covered_by(waiver: Waiver, limit: int = 50) -> list[ReviewChange]:
    """The changes a waiver's scope covers, newest first: its one change, or every change of
    the tenant whose artifacts are all among the waiver's (as ``waivers_in_scope`` judges)."""
    from reviews.models import ChangeItem, ChangeRequest

    qs = ChangeRequest.objects.select_related("tenant", "author")
    if waiver.change_id is not None:
        return list(qs.filter(pk=waiver.change_id))
    artifact_ids = [a.pk for a in waiver.artifacts.all()]
    if not artifact_ids:
        return []
    inside = ChangeItem.objects.filter(change=OuterRef("pk"), artifact_id__in=artifact_ids)
    outside = ChangeItem.objects.filter(change=OuterRef("pk")).exclude(artifact_id__in=artifact_ids)
    return list(
        qs.filter(tenant_id=waiver.tenant_id)
        .filter(Exists(inside), ~Exists(outside))
        .order_by("-year", "-number")[:limit]
    )


# --- waiver list filters (API and CLI) -------------------------------------------------------


@dataclass(frozen=True)
class WaiverQuery:
    """What the waiver list is narrowed to; a field left ``None`` narrows nothing.

    ``state`` is one state or several (any of them); ``tenant`` a tenant's slug.
    ``expiring_within`` keeps waivers that are neither revoked nor expired at ``now`` and
    expire within that many days; a renewed waiver still shows (with ``renewed_by``).
    """

    state: str | Sequence[str] | None = None
    tenant: str | None = None
    check: str | None = None
    expiring_within: int | None = None


def waivers_matching(
    qs: QuerySet[Waiver], now: datetime, query: WaiverQuery | None = None
) -> QuerySet[Waiver]:
    """The one waiver filter (the page, the API and the CLI): ``qs`` with its state at ``now``
    (expiring soon first, unless ``qs`` already carries its state), narrowed by ``query``."""
    query = query or WaiverQuery()
    if "state" not in qs.query.annotations:
        qs = waivers_by_state(qs, now)
    if query.state:
        states = [query.state] if isinstance(query.state, str) else list(query.state)
        qs = qs.filter(state__in=states)  # type: ignore[misc]  # an annotation
    if query.tenant:
        qs = qs.filter(tenant__slug=query.tenant)
    if query.check:
        qs = qs.filter(check_kind=query.check)
    if query.expiring_within is not None:
        qs = qs.filter(
            Q(revoked_at__isnull=True) | Q(revoked_at__gt=now),
            expires_at__gt=now,
            expires_at__lte=now + timedelta(days=query.expiring_within),
        )
    return qs


def all_waivers() -> QuerySet[Waiver]:
    """Every waiver, with what its rows show (for the CLI, which acts as the system)."""
    return Waiver.objects.select_related(
        "tenant",
        "owner",
        "granted_by",
        "countersigned_by",
        "revoked_by",
        "change",
        "renews",
        "renewal",
    ).prefetch_related("artifacts__artifact_class", "artifacts__tenant")
