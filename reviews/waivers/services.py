"""Waivers: grant, renew, countersign, revoke, and the alerts before and after they expire."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from accounts.choices import Role
from accounts.models import Tenant, User
from accounts.selectors import holders_of, is_member
from governance.kernel.errors import Conflict, DomainError
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import event_record
from governance.kernel.inputs import clean_text
from governance.kernel.models import Notification
from governance.kernel.notifications import notification_resolve, notification_send
from governance.kernel.numbering import next_number
from registry.models import Artifact
from reviews.waivers import permissions
from reviews.waivers.choices import SECURITY_CHECKS, WaiverState
from reviews.waivers.models import Waiver, WaiverCounter

logger = logging.getLogger(__name__)


def _links(links: Sequence[str] | None) -> list[str]:
    if links is None:
        return []
    if isinstance(links, str) or not all(isinstance(link, str) for link in links):
        raise DomainError("Advisory links must be a list of URLs.", field="advisory_links")
    cleaned = [link.strip() for link in links if link.strip()]
    if len(cleaned) > 20:
        raise DomainError("At most 20 advisory links.", field="advisory_links")
    check = URLValidator(schemes=["http", "https"])
    for link in cleaned:
        try:
            if len(link) > 500:
                raise ValidationError("too long")
            check(link)
        except ValidationError as exc:
            raise DomainError(
                f"'{link[:80]}' is not an http(s) URL of at most 500 characters.",
                field="advisory_links",
            ) from exc
    return cleaned


def _waiver_payload(waiver: Waiver) -> dict[str, Any]:
    return {
        "waiver": waiver.reference,
        "check": waiver.check_kind,
        "metric": waiver.metric or None,
        "change": waiver.change.reference if waiver.change_id and waiver.change else None,
        "change_revision": waiver.change_revision,
        "artifacts": sorted(a.path for a in waiver.artifacts.all()),
        "owner": waiver.owner.username,
        "starts_at": waiver.starts_at.isoformat(),
        "expires_at": waiver.expires_at.isoformat(),
        "justification": waiver.justification,
        "mitigation": waiver.mitigation,
        "advisory_links": list(waiver.advisory_links),
        "needs_security": waiver.needs_security,
        "renews": waiver.renews.reference if waiver.renews_id and waiver.renews else None,
    }


def _expiry(expires_at: datetime | None, now: datetime) -> datetime:
    if not isinstance(expires_at, datetime):
        raise DomainError("Give the expiry as a date and time.", field="expires_at")
    if timezone.is_naive(expires_at):
        expires_at = timezone.make_aware(expires_at)
    if expires_at <= now:
        raise DomainError("The expiry must be in the future.", field="expires_at")
    limit = now + timedelta(days=settings.WAIVER_MAX_DAYS)
    if expires_at > limit:
        raise DomainError(
            f"A waiver runs at most {settings.WAIVER_MAX_DAYS} days (until "
            f"{limit:%Y-%m-%d %H:%M} UTC); renew it when that is not enough.",
            field="expires_at",
        )
    return expires_at


@transaction.atomic
def waiver_grant(
    *,
    tenant: Tenant,
    actor: User | None,
    check_kind: str,
    owner: User | None,
    justification: str,
    mitigation: str,
    expires_at: datetime | None,
    change: Any | None = None,
    artifacts: Sequence[Artifact] = (),
    metric: str = "",
    advisory_links: Sequence[str] | None = None,
    renews: Waiver | None = None,
) -> Waiver:
    """Grant a waiver that lets one failed check (or gate metric) pass until ``expires_at``.

    Needs an administrator of the tenant. Waiving a security check also needs a security
    officer other than the grantor to countersign (:func:`waiver_countersign`) before the
    waiver counts. The author of a change cannot waive its checks.
    """
    now = timezone.now()
    permissions.can_grant_waiver(actor, tenant, change).require()
    metric = _checked_metric(check_kind, metric)
    change, artifacts = _checked_scope(tenant, change, artifacts)
    _refuse_needless_waiver(
        tenant=tenant, check_kind=check_kind, metric=metric, change=change, artifacts=artifacts
    )
    owner = _checked_owner(owner, tenant)
    justification = clean_text(justification, "justification")
    mitigation = clean_text(mitigation, "mitigation")
    links = _links(advisory_links)
    expires_at = _expiry(expires_at, now)
    waiver = Waiver.objects.create(
        tenant=tenant,
        year=now.year,
        number=next_number(WaiverCounter, now.year),
        check_kind=check_kind,
        metric=metric,
        change=change,
        change_revision=change.revision if change is not None else None,
        owner=owner,
        justification=justification,
        mitigation=mitigation,
        advisory_links=links,
        starts_at=now,
        expires_at=expires_at,
        granted_by=actor,
        needs_security=check_kind in SECURITY_CHECKS,
        renews=renews,
    )
    if artifacts:
        waiver.artifacts.set(artifacts)
    event_record(
        kind=EventKind.WAIVER_RENEWED if renews is not None else EventKind.WAIVER_GRANTED,
        actor=actor,
        tenant=tenant,
        subject=waiver,
        payload=_waiver_payload(waiver),
    )
    if waiver.needs_security:
        _ask_for_countersignature(waiver, actor)
    return waiver


def _checked_metric(check_kind: str, metric: str) -> str:
    """The check must be one; a metric (trimmed) names one change gate only."""
    from reviews.choices import CheckKind

    if check_kind not in CheckKind.values:
        raise DomainError(
            f"'{check_kind}' is not a check; use one of {', '.join(CheckKind.values)}.",
            field="check_kind",
        )
    metric = (metric or "").strip()
    if metric and check_kind != CheckKind.CHANGE_GATES:
        raise DomainError("Only a change-gates waiver can name a metric.", field="metric")
    if len(metric) > 100:
        raise DomainError("At most 100 characters.", field="metric")
    return metric


def _checked_scope(
    tenant: Tenant, change: Any | None, artifacts: Sequence[Artifact]
) -> tuple[Any | None, list[Artifact]]:
    """One change of the tenant that can still move forward (re-read for its status), or
    artifacts of the tenant; never both, never neither."""
    from reviews.choices import ChangeStatus
    from reviews.models import ChangeRequest

    artifacts = list(artifacts)
    if (change is None) == (not artifacts):
        raise DomainError(
            "Scope the waiver to one change or to one or more artifacts (not both).",
            field="scope",
        )
    if change is not None:
        change = ChangeRequest.objects.select_related("tenant").get(pk=change.pk)  # fresh status
        if change.tenant_id != tenant.pk:
            raise DomainError(f"No change {change.reference} in {tenant.slug}.", field="change")
        if change.status in (
            ChangeStatus.PROMOTED,
            ChangeStatus.ROLLED_BACK,
            ChangeStatus.WITHDRAWN,
        ):
            raise Conflict(
                f"{change.reference} is {change.get_status_display().lower()}; "
                "there is nothing left to waive.",
                field="change",
            )
    for artifact in artifacts:
        if artifact.tenant_id != tenant.pk:
            raise DomainError(f"No artifact {artifact.path} in {tenant.slug}.", field="artifacts")
    return change, artifacts


def _checked_owner(owner: User | None, tenant: Tenant) -> User:
    """Every waiver has an owner, an active member of its tenant."""
    if owner is None:
        raise DomainError("Every waiver has an owner.", field="owner")
    if not owner.is_active or not is_member(owner, tenant):
        raise DomainError(
            f"{owner.username} is not an active member of {tenant.slug}.", field="owner"
        )
    return owner


def _ask_for_countersignature(waiver: Waiver, actor: User | None) -> None:
    """Tell the tenant's security officers (but the grantor) that a waiver awaits them."""
    officers = [
        u for u in holders_of(waiver.tenant, [Role.SECURITY_OFFICER]) if actor is None or u != actor
    ]
    notification_send(
        users=officers,
        tenant=waiver.tenant,
        title=f"Countersign {waiver.reference}: it waives a security check",
        body=waiver.justification,
        url=waiver.get_absolute_url(),
        dedupe_key=f"waiver:{waiver.pk}:countersign",
        subject=countersign_subject(waiver),
    )


def countersign_subject(waiver: Waiver) -> str:
    """Asking a security officer to countersign: open until countersigned or revoked."""
    return f"waiver:{waiver.pk}:countersign"


def expiry_subject(waiver: Waiver) -> str:
    """Asking to renew a waiver that expires (or expired): open until renewed or revoked."""
    return f"waiver:{waiver.pk}:expiry"


def _refuse_needless_waiver(
    *,
    tenant: Tenant,
    check_kind: str,
    metric: str,
    change: Any | None,
    artifacts: Sequence[Artifact],
) -> None:
    """A waiver excuses a check that applies and has not passed; refuse one for anything else.

    On a change: the check must be one the change requires, and its newest run on the
    current revision must not have passed (nor, for one metric, that metric's gate).
    On artifacts: the check must be one a change to at least one of them would require.
    """
    from reviews import checks as check_catalog
    from reviews.choices import CheckStatus
    from reviews.selectors import check_summary, failing_metrics

    label = check_catalog.label(check_kind)
    if change is not None:
        runs = check_summary(change).runs
        if check_kind not in runs:
            needed = ", ".join(check_catalog.label(k) for k in runs)
            raise DomainError(
                f"{label} does not apply to {change.reference} (not required; it needs "
                f"{needed}); there is nothing to waive.",
                field="check_kind",
            )
        run = runs[check_kind]
        if run is not None and run.status == CheckStatus.PASSED:
            raise Conflict(
                f"{label} has passed on {change.reference} (revision {run.revision}); "
                "there is nothing to waive.",
                field="check_kind",
            )
        if metric and run is not None and run.status == CheckStatus.FAILED:
            failing, _ = failing_metrics(run)
            if metric not in failing:
                raise Conflict(
                    f"The {metric} gate has passed on {change.reference} (revision "
                    f"{run.revision}; failing: {', '.join(sorted(failing)) or 'none'}); "
                    "there is nothing to waive.",
                    field="metric",
                )
        return
    classes = {a.artifact_class.slug for a in artifacts}
    if check_kind not in check_catalog.checks_for_classes(tenant.pk, classes):
        raise DomainError(
            f"{label} does not apply to {', '.join(sorted(a.path for a in artifacts))} "
            "(no change to them requires it); there is nothing to waive.",
            field="check_kind",
        )


def _lock_waiver(waiver: Waiver) -> Waiver:
    return (
        Waiver.objects.select_for_update(of=("self",))
        .select_related("tenant", "owner", "change", "renews", "granted_by")
        .get(pk=waiver.pk)
    )


@transaction.atomic
def waiver_renew(
    *,
    waiver: Waiver,
    actor: User | None,
    expires_at: datetime | None,
    justification: str | None = None,
    mitigation: str | None = None,
    advisory_links: Sequence[str] | None = None,
) -> Waiver:
    """Renew a waiver: a new waiver with the same scope, linked to the old one (never an edit).

    The same people must agree as for a grant (a security check is countersigned again).
    """
    waiver = _lock_waiver(waiver)
    now = timezone.now()
    if waiver.state_at(now) == WaiverState.REVOKED:
        raise Conflict(
            f"{waiver.reference} was revoked; grant a new waiver instead.", field="status"
        )
    renewal = Waiver.objects.filter(renews=waiver).first()
    if renewal is not None:
        raise Conflict(
            f"{waiver.reference} was already renewed by {renewal.reference}; renew that one.",
            field="status",
        )
    renewal = waiver_grant(
        tenant=waiver.tenant,
        actor=actor,
        check_kind=waiver.check_kind,
        metric=waiver.metric,
        change=waiver.change,
        artifacts=list(waiver.artifacts.all()),
        owner=waiver.owner,
        justification=waiver.justification if justification is None else justification,
        mitigation=waiver.mitigation if mitigation is None else mitigation,
        advisory_links=waiver.advisory_links if advisory_links is None else advisory_links,
        expires_at=expires_at,
        renews=waiver,
    )
    notification_resolve(subject=expiry_subject(waiver), reason=f"Renewed as {renewal.reference}.")
    return renewal


@transaction.atomic
def waiver_countersign(*, waiver: Waiver, actor: User) -> Waiver:
    """A security officer's agreement to a waiver of a security check; until then it does not count."""
    waiver = _lock_waiver(waiver)
    now = timezone.now()
    if not waiver.needs_security:
        raise Conflict(f"{waiver.reference} waives no security check.", field="status")
    if waiver.countersigned_at is not None:
        raise Conflict(
            f"{waiver.reference} was already countersigned by "
            f"{waiver.countersigned_by.username if waiver.countersigned_by else 'the system'}.",
            field="status",
        )
    state = waiver.state_at(now)
    if state in (WaiverState.REVOKED, WaiverState.EXPIRED):
        raise Conflict(f"{waiver.reference} is {state.label.lower()}.", field="status")
    permissions.can_countersign_waiver(actor, waiver).require()
    Waiver.objects.filter(pk=waiver.pk).update(countersigned_by=actor, countersigned_at=now)
    waiver.refresh_from_db()
    event_record(
        kind=EventKind.WAIVER_COUNTERSIGNED,
        actor=actor,
        tenant=waiver.tenant,
        subject=waiver,
        payload={"waiver": waiver.reference, "check": waiver.check_kind},
    )
    notification_resolve(
        subject=countersign_subject(waiver), reason=f"Countersigned by {actor.username}."
    )
    return waiver


@transaction.atomic
def waiver_revoke(*, waiver: Waiver, actor: User | None, reason: str) -> Waiver:
    """End a waiver now (an administrator or a security officer); the changes it covered block again."""
    waiver = _lock_waiver(waiver)
    reason = clean_text(reason, "reason", limit=2000)
    permissions.can_revoke_waiver(actor, waiver).require()
    if waiver.revoked_at is not None:
        raise Conflict(f"{waiver.reference} is already revoked.", field="status")
    now = timezone.now()
    Waiver.objects.filter(pk=waiver.pk).update(
        revoked_at=now, revoked_by=actor, revoke_reason=reason
    )
    waiver.refresh_from_db()
    event_record(
        kind=EventKind.WAIVER_REVOKED,
        actor=actor,
        tenant=waiver.tenant,
        subject=waiver,
        payload={
            "waiver": waiver.reference,
            "reason": reason,
            "was_expiring": waiver.expires_at.isoformat(),
        },
    )
    notification_resolve(
        subject=[countersign_subject(waiver), expiry_subject(waiver)],
        reason=f"{waiver.reference} was revoked.",
    )
    return waiver


def waiver_alerts_send(*, now: datetime | None = None) -> int:
    """Tell each waiver's owner and the tenant's administrators when it will expire soon, and when it has.

    Once per waiver and kind of alert, however often it runs (the notification's dedupe key);
    each waiver in its own transaction, so a worker that dies halfway leaves the rest for the
    next run. A waiver that was renewed or revoked needs no alert. Returns notifications created.
    """
    now = now or timezone.now()
    soon = now + timedelta(days=settings.WAIVER_EXPIRING_SOON_DAYS)
    due = (
        Waiver.objects.filter(revoked_at__isnull=True, expires_at__lte=soon, renewal__isnull=True)
        .select_related("tenant", "owner", "change")
        .order_by("expires_at")
    )
    waivers = list(due)
    keys = {
        w.pk: f"waiver:{w.pk}:{'expired' if w.expires_at <= now else 'expiring'}" for w in waivers
    }
    # What was sent already, in one query: a sweep over waivers alerted long ago costs
    # nothing per waiver (it runs every few minutes, and expired waivers stay due).
    sent = set(
        Notification.objects.filter(dedupe_key__in=list(keys.values())).values_list(
            "dedupe_key", "user_id"
        )
    )
    admins: dict[Any, list[User]] = {}
    created = 0
    for waiver in waivers:
        if waiver.tenant_id not in admins:
            admins[waiver.tenant_id] = list(holders_of(waiver.tenant, [Role.ADMINISTRATOR]))
        people = [u for u in [waiver.owner, *admins[waiver.tenant_id]] if u.is_active]
        key = keys[waiver.pk]
        if all((key, person.pk) in sent for person in people):
            continue
        expired = waiver.expires_at <= now
        if expired:
            blocked = _blocked_changes_text(waiver)
            title = (
                f"Renew {waiver.reference} or fix {waiver.get_check_kind_display()}: "
                "the waiver has expired and the check blocks again"
            )
            body = (
                f"The waiver of {waiver.get_check_kind_display()} expired on "
                f"{waiver.expires_at:%Y-%m-%d %H:%M} UTC. {blocked}Renew it or fix the check."
            )
        else:
            title = (
                f"Renew {waiver.reference} or let it lapse: it expires on "
                f"{waiver.expires_at:%Y-%m-%d} ({waiver.get_check_kind_display()})"
            )
            body = (
                f"Renew it before {waiver.expires_at:%Y-%m-%d %H:%M} UTC or the changes it "
                f"covers will be blocked again. Mitigation: {waiver.mitigation}"
            )
        with transaction.atomic():
            created += len(
                notification_send(
                    users=[p for p in people if (key, p.pk) not in sent],
                    tenant=waiver.tenant,
                    title=title,
                    body=body,
                    url=waiver.get_absolute_url(),
                    dedupe_key=key,
                    subject=expiry_subject(waiver),
                )
            )
    return created


def _blocked_changes_text(waiver: Waiver) -> str:
    from reviews.choices import OPEN_STATES

    if waiver.change_id is not None and waiver.change is not None:
        open_changes = [waiver.change] if waiver.change.status in OPEN_STATES else []
    else:
        from reviews.models import ChangeRequest

        ids = list(waiver.artifacts.values_list("pk", flat=True))
        open_changes = list(
            ChangeRequest.objects.filter(status__in=OPEN_STATES, items__artifact_id__in=ids)
            .distinct()
            .order_by("year", "number")[:10]
        )
    if not open_changes:
        return ""
    return "Open changes it covered: " + ", ".join(c.reference for c in open_changes) + ". "
