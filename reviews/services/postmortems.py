"""Emergency follow-up: post-mortems of emergency changes and their overdue reminders."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from governance.kernel.errors import Conflict, DomainError
from governance.kernel.events.kinds import EventKind
from governance.kernel.inputs import clean_text
from governance.kernel.notifications import notification_resolve, notification_send
from reviews import permissions, selectors
from reviews.models import ChangeRequest
from reviews.services.common import lock_change, record_event
from reviews.services.notifications import postmortem_subject


@transaction.atomic
def postmortem_record(
    *, change: ChangeRequest, actor: User | None, summary: str, url: str = ""
) -> ChangeRequest:
    """Close an emergency change's follow-up with the post-mortem's summary (and a link to it).

    The author, an owner of a changed artifact, an administrator or a security officer
    may record it; late ones are accepted and marked late in the event.
    """
    from django.core.exceptions import ValidationError
    from django.core.validators import URLValidator

    change = lock_change(change)
    if not change.emergency or change.postmortem_due_at is None:
        raise Conflict(
            f"{change.reference} is not a promoted emergency change; it has no post-mortem.",
            field="status",
        )
    if change.postmortem_done_at is not None:
        raise Conflict(f"{change.reference}'s post-mortem is already recorded.", field="status")
    permissions.can_record_postmortem(actor, change).require()
    summary = clean_text(summary, "summary", required=True, limit=20000)
    url = (url or "").strip()
    if url:
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError as exc:
            raise DomainError("Give an http(s) link to the post-mortem.", field="url") from exc
        if len(url) > 500:
            raise DomainError("At most 500 characters.", field="url")
    now = timezone.now()
    change.postmortem_done_at = now
    change.postmortem_by = actor
    change.postmortem_summary = summary
    change.postmortem_url = url
    change.save(
        update_fields=[
            "postmortem_done_at",
            "postmortem_by",
            "postmortem_summary",
            "postmortem_url",
        ]
    )
    record_event(
        EventKind.POSTMORTEM_RECORDED,
        change,
        actor,
        summary=summary,
        url=url or None,
        due_at=change.postmortem_due_at.isoformat(),
        late=now > change.postmortem_due_at,
    )
    notification_resolve(
        subject=postmortem_subject(change),
        reason=f"The post-mortem was recorded by {actor.username if actor else 'the system'}.",
    )
    return change


def postmortem_reminders_send(*, now: Any = None) -> int:
    """Notify the owners and author of each emergency change whose post-mortem is overdue, once each."""
    now = now or timezone.now()
    overdue = ChangeRequest.objects.filter(
        emergency=True, postmortem_due_at__lt=now, postmortem_done_at__isnull=True
    ).select_related("tenant", "author")
    created = 0
    for change in overdue:
        owners = list(User.objects.filter(pk__in=selectors.owners_of(change)))
        with transaction.atomic():
            created += len(
                notification_send(
                    users=[*owners, change.author],
                    tenant=change.tenant,
                    title=(
                        f"[Emergency] Record the post-mortem of {change.reference}: it is overdue"
                    ),
                    body=(
                        f"It was due on {change.postmortem_due_at:%Y-%m-%d} "
                        f"(promoted {change.promoted_at:%Y-%m-%d}). Record it on the change page."
                    ),
                    url=change.get_absolute_url(),
                    dedupe_key=f"postmortem:{change.pk}:overdue",
                    subject=postmortem_subject(change),
                )
            )
    return created
