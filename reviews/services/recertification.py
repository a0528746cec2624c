"""Re-certification after an emergency: an emergency change's promotion opens one; a normal
change proposing the same versions, once approved, closes it; the sweep reminds once when it is
overdue (learning-artifact-lifecycle.md, "Exceptions and Escalations")."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.choices import Role
from accounts.models import User
from accounts.selectors import holders_of
from governance.kernel.events.kinds import EventKind
from governance.kernel.notifications import notification_resolve, notification_send
from reviews import selectors
from reviews.models import ChangeRequest, Recertification
from reviews.services.common import change_label, record_event
from reviews.services.notifications import promote_subject


def recertification_subject(recertification: Recertification) -> str:
    """The notification subject of one overdue re-certification."""
    return f"recertification:{recertification.pk}"


def recertify_within_days(change: ChangeRequest) -> int:
    """Days an emergency change's versions have to be re-certified: the lifecycle policy's."""
    from reviews.lifecycle import policy_for

    return policy_for(change.tenant, change.change_type).recertify_within_days


@transaction.atomic
def recertification_open(
    *, change: ChangeRequest, actor: User | None, now: datetime | None = None
) -> Recertification | None:
    """Open the re-certification of a just-promoted emergency change (in the promotion's
    transaction): due in the lifecycle policy's ``recertify_within_days``. None for a normal
    change; the one already open for this change otherwise (never two)."""
    if not change.emergency:
        return None
    now = now or timezone.now()
    days = recertify_within_days(change)
    recertification, created = Recertification.objects.get_or_create(
        emergency=change, defaults={"opened_at": now, "due_at": now + timedelta(days=days)}
    )
    if created:
        record_event(
            EventKind.RECERTIFICATION_OPENED,
            change,
            actor,
            due_at=recertification.due_at.isoformat(),
            days=days,
            versions=[i.proposed.path for i in selectors.items_of(change)],
        )
    return recertification


def recertifications_complete(
    *, change: ChangeRequest, actor: User | None
) -> list[Recertification]:
    """A normal change was just approved (in that transaction): it re-certifies every open
    re-certification whose emergency change's versions it proposes too (more is fine)."""
    if change.emergency:
        return []
    proposed = set(change.items.values_list("proposed_id", flat=True))
    candidates = list(
        Recertification.objects.filter(
            certified_at__isnull=True, emergency__items__proposed_id__in=proposed
        )
        .values_list("pk", flat=True)
        .distinct()
    )
    if not candidates:
        return []
    now = timezone.now()
    done = []
    for recertification in (
        Recertification.objects.select_for_update(of=("self",))
        .select_related("emergency__tenant")
        .filter(pk__in=candidates, certified_at__isnull=True)
        .order_by("pk")
    ):
        emergency = recertification.emergency
        needed = set(emergency.items.values_list("proposed_id", flat=True))
        if not needed <= proposed:
            continue
        recertification.certified_at = now
        recertification.followup = change
        recertification.save(update_fields=["certified_at", "followup"])
        record_event(
            EventKind.RECERTIFICATION_COMPLETED,
            emergency,
            actor,
            followup=change.reference,
            due_at=recertification.due_at.isoformat(),
            late=now > recertification.due_at,
        )
        notification_resolve(
            subject=recertification_subject(recertification),
            reason=f"{change.reference} re-certified its versions.",
        )
        done.append(recertification)
    items = selectors.items_of(change)
    if done and all(i.artifact.active_version_id == i.proposed_id for i in items):
        # It proposes only versions already active: nothing is left to promote.
        notification_resolve(
            subject=promote_subject(change),
            reason=f"{change.reference} re-certified versions that are already active.",
        )
    return done


def recertification_reminders_send(*, now: datetime | None = None) -> int:
    """Remind the artifacts' owners and the tenant's security officers, once, of each emergency
    change whose versions are not re-certified past their due date; records
    ``recertification.overdue``. Each in its own transaction, its row locked (another sweep
    running at once skips it) and stamped ``reminded_at``. Returns notifications created."""
    now = now or timezone.now()
    due = list(
        Recertification.objects.filter(
            certified_at__isnull=True, reminded_at__isnull=True, due_at__lt=now
        )
        .order_by("due_at")
        .values_list("pk", flat=True)
    )
    created = 0
    for pk in due:
        with transaction.atomic():
            created += _remind(pk, now)
    return created


def _remind(pk: Any, now: datetime) -> int:
    recertification = (
        Recertification.objects.select_for_update(of=("self",), skip_locked=True)
        .select_related("emergency__tenant")
        .filter(pk=pk, certified_at__isnull=True, reminded_at__isnull=True)
        .first()
    )
    if recertification is None:
        return 0  # another sweep holds it, or it was reminded or re-certified meanwhile
    change = recertification.emergency
    owners = list(User.objects.filter(pk__in=selectors.owners_of(change), is_active=True))
    officers = list(holders_of(change.tenant, [Role.SECURITY_OFFICER]))
    people = list({u.pk: u for u in [*owners, *officers]}.values())
    versions = [i.proposed.path for i in selectors.items_of(change)]
    notes = notification_send(
        users=people,
        tenant=change.tenant,
        title=f"{change_label(change)}: re-certify its versions, it is overdue",
        body=(
            f"{', '.join(versions)} went live on the emergency path and were due to be "
            f"re-certified by a normal change request by {recertification.due_at:%Y-%m-%d}. "
            "Open one proposing the same versions and have it approved."
        ),
        url=change.get_absolute_url(),
        dedupe_key=f"recertification:{recertification.pk}:overdue",
        subject=recertification_subject(recertification),
    )
    recertification.reminded_at = now
    recertification.save(update_fields=["reminded_at"])
    record_event(
        EventKind.RECERTIFICATION_OVERDUE,
        change,
        None,
        due_at=recertification.due_at.isoformat(),
        versions=versions,
        reminded=sorted(u.username for u in people),
    )
    return len(notes)
