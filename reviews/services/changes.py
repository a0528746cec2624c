"""Opening and editing change requests: open, revise, submit, withdraw, comment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant, User
from governance.kernel.errors import Conflict, DomainError
from governance.kernel.events.kinds import EventKind
from governance.kernel.inputs import clean_text
from governance.kernel.numbering import next_number
from registry.choices import ArtifactClass
from registry.diffs import Side, version_diff
from registry.models import Artifact, Version
from registry.selectors import lifecycle_refusal
from reviews import checks as check_catalog
from reviews import permissions, selectors
from reviews import policy as approval_policy
from reviews.choices import (
    EDITABLE_STATES,
    ChangeStatus,
    DiffSide,
    Requirement,
    RolloutStrategy,
)
from reviews.models import ChangeCounter, ChangeItem, ChangeRequest, Comment
from reviews.services.common import (
    lock_change,
    record_event,
    rehash,
    require_author_or_admin,
    resolve_version,
    transition,
    version_ref,
    void_approvals,
)
from reviews.services.evidence import notify_requirements, start_checks
from reviews.services.notifications import change_closed_resolve
from reviews.waivers.selectors import waivers_in_scope


def _resolve_versions(tenant: Tenant, proposed: Sequence[Version | str]) -> list[Version]:
    versions: list[Version] = []
    for i, item in enumerate(proposed):
        try:
            version = resolve_version(tenant, item, field="proposed")
        except DomainError as exc:
            raise DomainError(f"proposed[{i}]: {exc.message}", field="proposed") from exc
        refusal = lifecycle_refusal(version)
        if refusal is not None:
            raise DomainError(f"proposed[{i}]: {refusal}.", field="proposed")
        versions.append(version)
    if not versions:
        raise DomainError("Propose at least one version.", field="proposed")
    seen: set[Any] = set()
    for version in versions:
        if version.artifact_id in seen:
            raise DomainError(
                f"{version.artifact.path} appears twice; propose one version per artifact.",
                field="proposed",
            )
        seen.add(version.artifact_id)
    return versions


def _set_items(change: ChangeRequest, versions: Sequence[Version]) -> None:
    change.items.all().delete()
    for version in versions:
        artifact = version.artifact
        if artifact.active_version_id == version.pk and not selectors.awaiting_recertification(
            [version.pk]
        ):
            raise DomainError(f"{version.path} is already the active version.", field="proposed")
        ChangeItem.objects.create(
            change=change, artifact=artifact, proposed=version, current=artifact.active_version
        )


def _resolve_corpus(tenant: Tenant, corpus: Version | str | None) -> Version | None:
    if corpus is None or corpus == "":
        return None
    version = resolve_version(tenant, corpus, field="golden_corpus")
    if version.artifact.artifact_class.slug != ArtifactClass.GOLDEN_CORPUS:
        raise DomainError(f"{version.path} is not a golden corpus.", field="golden_corpus")
    return version


def _rollout_strategy(value: str) -> str:
    if value not in RolloutStrategy.values:
        raise DomainError(
            f"Choose one of {', '.join(RolloutStrategy.values)}.", field="rollout_strategy"
        )
    return value


@transaction.atomic
def change_create(
    *,
    tenant: Tenant,
    actor: User,
    title: str,
    rollback_plan: str,
    proposed: Sequence[Version | str],
    migration_plan: str = "",
    description: str = "",
    risk_note: str = "",
    privacy_related: bool = False,
    external_egress: bool = False,
    emergency: bool = False,
    golden_corpus: Version | str | None = None,
    rollout_strategy: str = RolloutStrategy.CANARY,
) -> ChangeRequest:
    """Open a change request (a draft) proposing versions to replace their artifacts' active ones.

    ``rollout_strategy`` says how its versions reach the application slots bound to their
    artifacts once promoted (``rollouts.services.rollout_create`` defaults to it).
    """
    permissions.can_open_change(actor, tenant).require()
    strategy = _rollout_strategy(rollout_strategy)
    title = clean_text(title, "title", required=True, limit=200)
    plan = clean_text(rollback_plan, "rollback_plan", required=True, limit=None)
    versions = _resolve_versions(tenant, proposed)
    corpus = _resolve_corpus(tenant, golden_corpus)
    now = timezone.now()
    change = ChangeRequest(
        year=now.year,
        number=next_number(ChangeCounter, now.year),
        tenant=tenant,
        change_type=versions[0].artifact.artifact_class.slug,
        title=title,
        description=(description or "").strip(),
        risk_note=(risk_note or "").strip(),
        rollback_plan=plan,
        migration_plan=clean_text(migration_plan, "migration_plan", required=False, limit=None),
        privacy_related=privacy_related,
        external_egress=external_egress,
        emergency=emergency,
        golden_corpus=corpus,
        rollout_strategy=strategy,
        author=actor,
        created_at=now,
    )
    change.save()
    _set_items(change, versions)
    rehash(change)
    record_event(
        EventKind.CHANGE_REQUEST_OPENED,
        change,
        actor,
        title=title,
        change_type=change.change_type,
        emergency=emergency,
        privacy_related=privacy_related,
        external_egress=external_egress,
        rollout_strategy=strategy,
        items=[
            {"proposed": version_ref(i.proposed), "current": version_ref(i.current)}
            for i in selectors.items_of(change)
        ],
    )
    return change


@transaction.atomic
def change_revise(
    *,
    change: ChangeRequest,
    actor: User | None,
    reason: str,
    proposed: Sequence[Version | str] | None = None,
    title: str | None = None,
    description: str | None = None,
    risk_note: str | None = None,
    rollback_plan: str | None = None,
    migration_plan: str | None = None,
    privacy_related: bool | None = None,
    external_egress: bool | None = None,
    emergency: bool | None = None,
    golden_corpus: Version | str | None = None,
    rollout_strategy: str | None = None,
) -> ChangeRequest:
    """Change what is proposed (or the record): a new revision, back to draft; every live decision is voided."""
    change = lock_change(change)
    require_author_or_admin(change, actor, "revise")
    if change.status not in EDITABLE_STATES:
        raise Conflict(
            f"{change.reference} is {change.get_status_display().lower()}; it can no longer be revised.",
            field="status",
        )
    reason = clean_text(reason, "reason", required=True, limit=500)
    if title is not None:
        change.title = clean_text(title, "title", required=True, limit=200)
    if rollback_plan is not None:
        change.rollback_plan = clean_text(rollback_plan, "rollback_plan", required=True, limit=None)
    for name, text in (
        ("description", description),
        ("risk_note", risk_note),
        ("migration_plan", migration_plan),
    ):
        if text is not None:
            setattr(change, name, clean_text(text, name, required=False, limit=None))
    for flag, value in (
        ("privacy_related", privacy_related),
        ("external_egress", external_egress),
        ("emergency", emergency),
    ):
        if value is not None:
            setattr(change, flag, value)
    if golden_corpus is not None:
        change.golden_corpus = _resolve_corpus(change.tenant, golden_corpus)
    if rollout_strategy is not None:
        change.rollout_strategy = _rollout_strategy(rollout_strategy)
    if proposed is not None:
        versions = _resolve_versions(change.tenant, proposed)
        _set_items(change, versions)
        change.change_type = versions[0].artifact.artifact_class.slug
    if change.status != ChangeStatus.DRAFT:
        transition(change, ChangeStatus.DRAFT)
    change.revision += 1
    change.decided_at = None
    change.save()
    rehash(change)
    void_approvals(change, actor, f"revised to revision {change.revision}: {reason}")
    change_closed_resolve(
        change, f"{change.reference} was revised to revision {change.revision}: {reason}"
    )
    record_event(
        EventKind.CHANGE_REQUEST_REVISED,
        change,
        actor,
        revision=change.revision,
        reason=reason,
        binding_sha256=change.binding_sha256,
        rollout_strategy=change.rollout_strategy,
        items=[
            {"proposed": version_ref(i.proposed), "current": version_ref(i.current)}
            for i in selectors.items_of(change)
        ],
    )
    return change


@transaction.atomic
def change_submit(*, change: ChangeRequest, actor: User | None) -> ChangeRequest:
    """Send a draft for review: fix the approval slots from the policy, start the required checks, notify."""
    change = lock_change(change)
    require_author_or_admin(change, actor, "submit")
    transition(change, ChangeStatus.IN_REVIEW)
    items = selectors.items_of(change)
    # The active versions may have moved since the draft was opened: compare with today's.
    for item in items:
        active = Artifact.objects.only("active_version").get(pk=item.artifact_id).active_version
        if (
            active is not None
            and active.pk == item.proposed_id
            and not selectors.awaiting_recertification([active.pk])
        ):
            raise Conflict(f"{item.proposed.path} is already active.", field="proposed")
        if item.current_id != (active.pk if active else None):
            ChangeItem.objects.filter(pk=item.pk).update(current=active)
    policy_row, document = selectors.effective_policy(change.tenant)
    facts = selectors.change_facts(change, items)
    change.requirements = approval_policy.requirements_for(document, facts)
    if Requirement.OWNER in change.requirements:
        owners = {i.artifact.owner_id for i in items if i.artifact.owner_id} - {change.author_id}
        if not owners:
            raise DomainError(
                "This change needs its accountable owner's approval, but no artifact in it has an "
                "owner other than the author: set an owner first.",
                field="proposed",
            )
    if Requirement.DEPUTY in change.requirements:
        deputies = {i.artifact.deputy_id for i in items if i.artifact.deputy_id} - {
            change.author_id
        }
        if not deputies:
            raise DomainError(
                "This change needs its deputy owner's approval, but no artifact in it has a "
                "deputy other than the author: set a deputy first.",
                field="proposed",
            )
    change.policy = policy_row
    change.passkey_requirements = [
        r for r in change.requirements if approval_policy.passkey_required(document, r)
    ]
    change.submitted_at = timezone.now()
    change.save()
    rehash(change)
    kinds = check_catalog.required_checks(change)
    runs = start_checks(change, kinds)
    record_event(
        EventKind.CHANGE_REQUEST_SUBMITTED,
        change,
        actor,
        revision=change.revision,
        binding_sha256=change.binding_sha256,
        requirements=change.requirements,
        waivers_in_scope=[w.reference for w in waivers_in_scope(change)],
        policy=policy_row.number if policy_row else "built-in",
        policy_rules=list(approval_policy.applying_rules(document, facts)),
        checks=[r.kind for r in runs],
        **(
            {"passkey_requirements": change.passkey_requirements}
            if change.passkey_requirements
            else {}
        ),
    )
    notify_requirements(change)
    return change


@transaction.atomic
def change_withdraw(
    *, change: ChangeRequest, actor: User | None, reason: str = ""
) -> ChangeRequest:
    """The author (or an administrator) gives up on a change; it stays on record."""
    change = lock_change(change)
    require_author_or_admin(change, actor, "withdraw")
    transition(change, ChangeStatus.WITHDRAWN)
    change.decided_at = timezone.now()
    change.save(update_fields=["status", "decided_at"])
    record_event(EventKind.CHANGE_REQUEST_WITHDRAWN, change, actor, reason=(reason or "").strip())
    change_closed_resolve(change, f"{change.reference} was withdrawn.")
    return change


@dataclass(frozen=True)
class LineAnchor:
    """Where a line comment goes: one line of one item's diff (the artifact's path, a side)."""

    path: str
    side: str
    line: int


def line_anchor(path: str | None, side: str | None, line: int | None) -> LineAnchor | None:
    """The anchor that form or API fields give: none when all are empty; a missing part is
    refused on its field (a line without a side, say)."""
    path, side = (path or "").strip(), (side or "").strip()
    if not path and not side and line is None:
        return None
    if not path:
        raise DomainError("Say which item of the change the line is in.", field="path")
    if not side:
        raise DomainError("Choose the old or the new side of the diff.", field="side")
    if line is None:
        raise DomainError("Give the line number.", field="line")
    return LineAnchor(path=path, side=side, line=line)


def _anchor_line_text(change: ChangeRequest, anchor: LineAnchor) -> str:
    """The text of the anchored line in the change's diff now; refused naming the bad field."""
    if anchor.side not in DiffSide.values:
        raise DomainError("Choose the old or the new side of the diff.", field="side")
    if isinstance(anchor.line, bool) or not isinstance(anchor.line, int) or anchor.line < 1:
        raise DomainError("Give a line number (1 or more).", field="line")
    item = next((i for i in selectors.items_of(change) if i.artifact.path == anchor.path), None)
    if item is None:
        raise DomainError(f"{anchor.path or 'That'} is not an item of this change.", field="path")
    if item.current is None:
        raise DomainError(
            f"{anchor.path} is new in this change: it has no diff to comment on by line.",
            field="path",
        )
    diff = version_diff(item.current, item.proposed)
    if not diff.rows:
        raise DomainError(f"{anchor.path} has no line diff (it is not text).", field="path")
    side = cast(Side, anchor.side)
    if not diff.has_line(side, anchor.line):
        version = item.current if anchor.side == DiffSide.OLD else item.proposed
        raise DomainError(
            f"Line {anchor.line} is not in {version.version} of {anchor.path}.", field="line"
        )
    return diff.line_text(side, anchor.line)


@transaction.atomic
def comment_add(
    *, change: ChangeRequest, actor: User, body: str, anchor: LineAnchor | None = None
) -> Comment:
    """A remark on a change, by anyone in its tenant; with ``anchor``, on one line of its diff
    as it is at the change's current revision."""
    permissions.can_comment(actor, change).require()
    text = clean_text(body, "body", required=True, limit=5000)
    if anchor is None:
        comment = Comment.objects.create(change=change, author=actor, body=text)
        record_event(EventKind.CHANGE_REQUEST_COMMENTED, change, actor, body=text)
        return comment
    # The revision must not move between reading it and anchoring to its diff.
    change = lock_change(change)
    line_text = _anchor_line_text(change, anchor)
    comment = Comment.objects.create(
        change=change,
        author=actor,
        body=text,
        revision=change.revision,
        path=anchor.path,
        side=anchor.side,
        line=anchor.line,
        line_text=line_text,
    )
    record_event(
        EventKind.CHANGE_REQUEST_COMMENTED,
        change,
        actor,
        body=text,
        revision=change.revision,
        path=anchor.path,
        side=anchor.side,
        line=anchor.line,
    )
    return comment
