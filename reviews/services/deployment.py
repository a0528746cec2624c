"""The Approved stage's deployment checklist: resource envelope, scaling thresholds, logging and
tracing coverage, kill-switch readiness, completed for a change's revision."""

from __future__ import annotations

import hashlib

from django.db import transaction

from accounts.models import User
from governance.kernel.errors import Conflict, DomainError
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import canonical
from governance.kernel.inputs import clean_text
from registry.choices import Stage
from reviews import permissions, selectors
from reviews.choices import EDITABLE_STATES, ChangeStatus
from reviews.models import ChangeRequest, DeploymentChecklist
from reviews.services.common import lock_change, record_event, review_stage_set

#: The checklist's parts a person must fill in, in the order the page and the CLI ask them.
CHECKLIST_FIELDS = {
    "resource_envelope": "resource envelope",
    "scaling_thresholds": "scaling thresholds",
    "logging_tracing": "logging and tracing coverage",
    "kill_switch": "kill-switch readiness",
}
#: The longest answer a part takes.
CHECKLIST_LIMIT = 10000


@transaction.atomic
def deployment_checklist_complete(
    *,
    change: ChangeRequest,
    resource_envelope: str,
    scaling_thresholds: str,
    logging_tracing: str,
    kill_switch: str,
    notes: str = "",
    actor: User | None,
) -> DeploymentChecklist:
    """Record the deployment checklist of the change's current revision (the author or an
    administrator). A later one for the same revision supersedes it; a revision of the change
    leaves it outdated (the Approved stage asks for one of the current revision)."""
    change = lock_change(change)  # the revision must not move while it is recorded
    permissions.can_complete_deployment_checklist(actor, change).require()
    if change.status not in EDITABLE_STATES:
        raise Conflict(
            f"{change.reference} is {change.get_status_display().lower()}; "
            "its deployment checklist is closed.",
            field="status",
        )
    parts = {
        "resource_envelope": resource_envelope,
        "scaling_thresholds": scaling_thresholds,
        "logging_tracing": logging_tracing,
        "kill_switch": kill_switch,
    }
    answers = {}
    for name, value in parts.items():
        if isinstance(value, str) and not value.strip():
            raise DomainError(
                f"The deployment checklist needs its {CHECKLIST_FIELDS[name]}.", field=name
            )
        answers[name] = clean_text(value, name, required=True, limit=CHECKLIST_LIMIT)
    answers["notes"] = clean_text(notes, "notes", required=False, limit=CHECKLIST_LIMIT)
    body = {"change": change.reference, "revision": change.revision, **answers}
    digest = hashlib.sha256(canonical(body)).hexdigest()
    checklist = DeploymentChecklist.objects.create(
        change=change, revision=change.revision, sha256=digest, completed_by=actor, **answers
    )
    record_event(
        EventKind.DEPLOYMENT_CHECKLIST_COMPLETED,
        change,
        actor,
        revision=change.revision,
        checklist_sha256=digest,
        **answers,
    )
    # Completed after the approval: the move into Approved the approval tried (and the
    # missing checklist held back) is tried again, as approval_decide tries it.
    if change.status == ChangeStatus.APPROVED and all(
        v.passes for v in selectors.check_verdicts(change)
    ):
        for item in selectors.items_of(change):
            review_stage_set(
                version=item.proposed, stage=Stage.APPROVED, actor=actor, change=change
            )
    return checklist
