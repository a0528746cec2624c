"""Drift between promotion and deployment: clients running other content than was approved.

A telemetry row may carry ``manifest_sha256``: the manifest hash of what the client actually
ran (the Python client sends the resolve answer's hash, or the hash the application says it
loaded). The approved hash of a row is the ``manifest_sha256`` of the version it names: the
registry signed that version and its resolve answer carried that hash, so anything else is
content nobody approved (a locally edited prompt, a stale bundle). ``drift_observe`` runs in
``telemetry_ingest``'s transaction for the batch's rows that carry a hash:

- a differing hash for a (tenant, slot) with no open episode opens one (``DeploymentDrift``),
  records ``runtime.drift_detected`` and notifies the artifact's owner and deputy, once per
  episode (a partial unique constraint keeps one open episode; a concurrent batch that loses
  the race adds to the winner's episode);
- a differing hash for an open episode updates it (no event, no notification);
- only matching hashes for an open episode whose last differing report is older than
  ``TELEMETRY_DRIFT_RESOLVE_SECONDS`` resolve it: ``runtime.drift_resolved``, and the owner's
  notification is closed.

Pages read open episodes through ``open_drifts_for_artifact`` (the artifact page, through
``registry.hooks``) and ``open_drifts`` (the readiness dashboard).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet

from accounts.models import Tenant
from accounts.selectors import tenant_scoped
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import event_record
from governance.kernel.notifications import notification_resolve, notification_send
from registry.models import Artifact, Version
from rollouts.models import DeploymentDrift, Slot


@dataclass(frozen=True)
class Report:
    """A batch's requests for one slot and version, with the hash the client ran."""

    slot: Slot
    version: Version
    reported_sha256: str
    requests: int

    @property
    def matches(self) -> bool:
        return self.reported_sha256 == self.version.manifest_sha256


def drift_subject(drift: DeploymentDrift) -> str:
    """The notification subject of an episode's (tenant, slot): one open notification each."""
    return f"deployment-drift:{drift.tenant_id}:{drift.slot_id}"


def _label(slot: Slot) -> str:
    return f"{slot.application.slug}.{slot.name}"


def _payload(drift: DeploymentDrift, tenant: Tenant) -> dict[str, Any]:
    return {
        "tenant": tenant.slug,
        "slot": _label(drift.slot),
        "artifact": drift.slot.artifact.path,
        "version": drift.version.path,
        "approved_sha256": drift.approved_sha256,
        "reported_sha256": drift.reported_sha256,
        "requests": drift.requests,
        "detected_at": drift.detected_at.isoformat(),
    }


def _detected(drift: DeploymentDrift, tenant: Tenant) -> None:
    """The episode's event and the owner's notification (once: only the opener calls this)."""
    artifact = drift.slot.artifact
    event_record(
        kind=EventKind.DEPLOYMENT_DRIFT_DETECTED,
        actor=None,
        tenant=tenant,
        subject=drift.slot,
        payload=_payload(drift, tenant),
    )
    notification_send(
        users=[artifact.owner, artifact.deputy],
        tenant=artifact.tenant,
        title=(
            f"{tenant.slug} runs unapproved content on {_label(drift.slot)}: "
            f"{drift.reported_sha256[:12]}… is not {drift.version.version}'s hash"
        ),
        body=(
            f"Clients of {tenant.slug} report {drift.version.path} with manifest hash "
            f"{drift.reported_sha256}; the registry approved {drift.approved_sha256}. Deploy the "
            "approved version (resolve it from the registry) or bring the change through review."
        ),
        url=artifact.get_absolute_url(),
        dedupe_key=f"deployment-drift:{drift.pk}",
        subject=drift_subject(drift),
    )


def _open(tenant: Tenant, report: Report, requests: int, now: datetime) -> DeploymentDrift | None:
    """A new episode, or None when a concurrent batch opened it first (its insert won)."""
    try:
        with transaction.atomic():
            return DeploymentDrift.objects.create(
                tenant=tenant,
                slot=report.slot,
                version=report.version,
                approved_sha256=report.version.manifest_sha256,
                reported_sha256=report.reported_sha256,
                requests=requests,
                detected_at=now,
                last_reported_at=now,
            )
    except IntegrityError:
        return None


def _resolve(drift: DeploymentDrift, tenant: Tenant, now: datetime) -> None:
    DeploymentDrift.objects.filter(pk=drift.pk).update(resolved_at=now)
    drift.resolved_at = now
    payload = _payload(drift, tenant)
    payload["resolved_at"] = now.isoformat()
    event_record(
        kind=EventKind.DEPLOYMENT_DRIFT_RESOLVED,
        actor=None,
        tenant=tenant,
        subject=drift.slot,
        payload=payload,
    )
    notification_resolve(
        subject=drift_subject(drift), reason="Clients report the approved hash again."
    )


@transaction.atomic
def drift_observe(*, tenant: Tenant, reports: Sequence[Report], now: datetime) -> dict[str, int]:
    """Open, extend or resolve ``tenant``'s drift episodes from one batch's hash reports.

    One query when nothing drifts and nothing is open (the open episodes of the batch's
    slots, locked). Returns ``{"detected": n, "resolved": m}``.
    """
    counts = {"detected": 0, "resolved": 0}
    if not reports:
        return counts
    per_slot: dict[Any, tuple[list[Report], list[Report]]] = {}
    for report in reports:
        differing, matching = per_slot.setdefault(report.slot.pk, ([], []))
        (matching if report.matches else differing).append(report)
    held = {
        d.slot_id: d
        for d in DeploymentDrift.objects.select_for_update(of=("self",))
        .select_related(
            "slot__application",
            "slot__artifact__tenant",
            "slot__artifact__artifact_class",
            "version__artifact__tenant",
            "version__artifact__artifact_class",
        )
        .filter(tenant=tenant, slot_id__in=list(per_slot), resolved_at__isnull=True)
        .order_by("pk")
    }
    quiet = timedelta(seconds=settings.TELEMETRY_DRIFT_RESOLVE_SECONDS)
    for slot_id in sorted(per_slot, key=str):
        differing, _ = per_slot[slot_id]
        drift = held.get(slot_id)
        if differing:
            last = differing[-1]
            requests = sum(r.requests for r in differing)
            if drift is None:
                opened = _open(tenant, last, requests, now)
                if opened is not None:
                    _detected(opened, tenant)
                    counts["detected"] += 1
                    continue
                drift = (
                    DeploymentDrift.objects.select_for_update(of=("self",))
                    .filter(tenant=tenant, slot_id=slot_id, resolved_at__isnull=True)
                    .first()
                )
                if drift is None:
                    continue
            DeploymentDrift.objects.filter(pk=drift.pk).update(
                reported_sha256=last.reported_sha256,
                last_reported_at=now,
                requests=F("requests") + requests,
            )
        elif drift is not None and drift.last_reported_at <= now - quiet:
            _resolve(drift, tenant, now)
            counts["resolved"] += 1
    return counts


# --- reads -----------------------------------------------------------------------------------


def _open_rows() -> QuerySet[DeploymentDrift]:
    return DeploymentDrift.objects.filter(resolved_at__isnull=True).select_related(
        "tenant",
        "slot__application",
        "slot__artifact__tenant",
        "slot__artifact__artifact_class",
        "version__artifact__tenant",
        "version__artifact__artifact_class",
    )


def open_drifts_for_artifact(
    artifact: Artifact, *, user: Any, member: bool, limit: int = 50
) -> list[DeploymentDrift]:
    """Open episodes on the slots bound to ``artifact`` (one query): all of them for members
    of the artifact's tenant (its owners' side), else those of tenants ``user`` belongs to."""
    rows = _open_rows().filter(slot__artifact=artifact)
    if not member:
        rows = tenant_scoped(rows, user=user, via="tenant")
    return list(rows.order_by("-detected_at", "-id")[:limit])


def open_drifts(tenants: Iterable[Tenant], *, limit: int = 50) -> QuerySet[DeploymentDrift]:
    """Open episodes reported by ``tenants`` or on their artifacts (the readiness dashboard)."""
    ids = [t.pk for t in tenants]
    return (
        _open_rows()
        .filter(Q(tenant_id__in=ids) | Q(slot__artifact__tenant_id__in=ids))
        .order_by("-detected_at", "-id")[:limit]
    )


def artifact_panels(user: Any, artifact: Artifact, roles: Iterable[str] | None) -> dict[str, Any]:
    """What the artifact page shows from rollouts (``registry.hooks.register_artifact_panels``):
    the open deployment drift episodes on its slots."""
    member = bool(roles) or bool(getattr(user, "is_superuser", False))
    return {"deployment_drifts": open_drifts_for_artifact(artifact, user=user, member=member)}
