"""How the review pages show things: the change page's rows and panels, the policy's rules, what my changes wait for.

Plain objects and functions the views hand to templates; no request, no response."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from django.urls import reverse
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from accounts.models import User
from accounts.selectors import has_active_passkey
from registry.choices import ArtifactClass, ContentKind, Stage
from registry.diffs import Side, VersionDiff, version_diff
from registry.highlight import highlight_json, highlight_text
from registry.models import Deprecation, Retirement, Version, VersionState
from reviews import checks as check_catalog
from reviews import hooks, lifecycle, permissions, selectors
from reviews import policy as approval_policy
from reviews.choices import (
    OPEN_STATES,
    ChangeStatus,
    CheckKind,
    CheckStatus,
    DiffSide,
    Promoter,
    Requirement,
)
from reviews.forms import DeploymentChecklistForm
from reviews.models import ChangeItem, ChangeRequest, Comment, DeploymentChecklist
from reviews.waivers.models import Waiver
from reviews.waivers.permissions import can_grant_waiver


def labels(requirements: list[str]) -> list[str]:
    return [Requirement(r).label for r in requirements]


def waiting_on(change: ChangeRequest) -> list[str]:
    """What one of my own changes waits for, in words."""
    if change.status == ChangeStatus.DRAFT:
        return ["you: submit it for review"]
    if change.status == ChangeStatus.REJECTED:
        return ["you: revise and resubmit"]
    status = selectors.approval_status(change)
    waits = [f"approval from {label}" for label in labels(status.missing)]
    waits += [f"check {text}" for text in selectors.check_summary(change).not_passed]
    if change.status == ChangeStatus.APPROVED and not waits:
        owner = selectors.promotion_by_owner(change)
        waits.append(f"promotion by {'the accountable owner' if owner else 'an administrator'}")
    return waits


@dataclass
class ItemView:
    """One proposed version as the page shows it: hashes, stages, and what changes."""

    item: ChangeItem
    proposed_stage: str
    current_stage: str | None
    diff: VersionDiff | None
    content_html: SafeString | None
    can_roll_back: bool
    proposed_deprecation: Deprecation | None = None
    proposed_retirement: Retirement | None = None
    current_deprecation: Deprecation | None = None
    current_retirement: Retirement | None = None
    #: The start of a line number's "comment on this line" link (side and line follow); empty
    #: when this person may not comment or the item has no line diff.
    comment_link: str = ""


def content_html(version: Version) -> SafeString | None:
    if version.content_kind == ContentKind.TEXT:
        return highlight_text(version.content_text)
    if version.content_kind == ContentKind.JSON:
        return highlight_json(version.content_json)
    return None


def item_views(
    change: ChangeRequest, items: list[ChangeItem], user: User, roles: set[str]
) -> list[ItemView]:
    ids = [i.proposed_id for i in items] + [i.current_id for i in items if i.current_id]
    stages = dict(
        VersionState.objects.filter(version_id__in=ids).values_list("version_id", "stage")
    )
    # One query each, whatever the number of items: every page that shows a version says
    # whether it is deprecated (and by what it is replaced) or retired.
    deprecations = {
        d.pk: d
        for d in Deprecation.objects.filter(version_id__in=ids).select_related(
            "replacement__artifact__artifact_class", "replacement__artifact__tenant"
        )
    }
    retirements = {r.pk: r for r in Retirement.objects.filter(version_id__in=ids)}
    views = []
    for item in items:
        current = item.current
        views.append(
            ItemView(
                item=item,
                proposed_stage=Stage(stages.get(item.proposed_id, Stage.DRAFT)).label,
                current_stage=Stage(stages.get(current.pk, Stage.DRAFT)).label if current else None,
                diff=version_diff(current, item.proposed) if current else None,
                content_html=None if current else content_html(item.proposed),
                can_roll_back=bool(permissions.can_roll_back(user, item.artifact, roles=roles))
                and change.status == ChangeStatus.PROMOTED
                and current is not None
                and item.artifact.active_version_id == item.proposed_id,
                proposed_deprecation=deprecations.get(item.proposed_id),
                proposed_retirement=retirements.get(item.proposed_id),
                current_deprecation=deprecations.get(current.pk) if current else None,
                current_retirement=retirements.get(current.pk) if current else None,
            )
        )
    return views


@dataclass(frozen=True)
class CommentView:
    """A comment as the conversation lists it: where it is anchored and whether that is still
    the change's revision (then it also shows under its line)."""

    comment: Comment
    where: str = ""
    outdated: bool = False


@dataclass(frozen=True)
class AnchorPreview:
    """The line a comment form is about to anchor to (from the link on a line number)."""

    path: str
    side: str
    line: int
    where: str
    text: str


def _where(comment_or_anchor: Comment | AnchorPreview, views: dict[str, ItemView]) -> str:
    view = views.get(comment_or_anchor.path)
    side = comment_or_anchor.side
    version = ""
    if view is not None:
        shown = view.item.current if side == DiffSide.OLD else view.item.proposed
        version = f" {shown.version}" if shown is not None else ""
    label = DiffSide(side).label.lower() if side in DiffSide.values else side
    return f"line {comment_or_anchor.line} of {comment_or_anchor.path} ({label}{version})"


def line_comments(
    change: ChangeRequest, views: list[ItemView], comments: list[Comment], may_comment: bool
) -> list[CommentView]:
    """Put this revision's line comments under their lines in the items' diffs (and give the
    line numbers their "comment on this line" link); list every comment for the conversation,
    those made on an earlier revision marked outdated (quoted there, never moved)."""
    by_path = {v.item.artifact.path: v for v in views}
    notes: dict[str, dict[tuple[Side, int], list[Comment]]] = {}
    listed: list[CommentView] = []
    for comment in comments:
        if not comment.anchored:
            listed.append(CommentView(comment))
            continue
        view = by_path.get(comment.path)
        current = (
            comment.revision == change.revision
            and view is not None
            and view.diff is not None
            and view.diff.has_line(cast(Side, comment.side), cast(int, comment.line))
        )
        if current:
            key = (cast(Side, comment.side), cast(int, comment.line))
            notes.setdefault(comment.path, {}).setdefault(key, []).append(comment)
        listed.append(CommentView(comment, _where(comment, by_path), outdated=not current))
    for path, view in by_path.items():
        if view.diff is None or not view.diff.rows:
            continue
        view.diff.attach_notes(notes.get(path, {}))
        if may_comment:
            view.comment_link = "?" + urlencode({"path": path}) + "&"
    return listed


def anchor_preview(views: list[ItemView], params: Any) -> AnchorPreview | None:
    """The line that ``?path=&side=&line=`` names, if it is a line of an item's diff now."""
    path, side, line = params.get("path", ""), params.get("side", ""), params.get("line", "")
    by_path = {v.item.artifact.path: v for v in views}
    view = by_path.get(path)
    if view is None or view.diff is None or side not in DiffSide.values or not line.isdigit():
        return None
    number = int(line)
    if not view.diff.has_line(cast(Side, side), number):
        return None
    text = view.diff.line_text(cast(Side, side), number)
    preview = AnchorPreview(path, side, number, "", text)
    return AnchorPreview(path, side, number, _where(preview, by_path), text)


def fillable_slots(
    change: ChangeRequest, user: User, status: selectors.ApprovalStatus
) -> list[str]:
    """The missing slots this user could fill now: none for whom ``permissions.can_decide``
    refuses (the author, someone holding no required role), none once they decided."""
    if change.status not in OPEN_STATES or not permissions.can_decide(user, change):
        return []
    if change.approvals.filter(approver=user, voided_at__isnull=True).exists():
        return []
    held = selectors.requirements_held_by(change, user)
    return [r for r in status.missing if r in held]


@dataclass(frozen=True)
class PasskeySignOff:
    """How this person signs off here: ``required`` lists their fillable slots whose sign-off
    needs a passkey (``selectors.passkey_required``); ``only`` when every one does (no
    password is offered then); ``has_passkey`` when they hold an active passkey."""

    required: list[str]
    only: bool
    has_passkey: bool

    @property
    def offered(self) -> bool:
        """Whether the passkey buttons are shown (a passkey to sign with)."""
        return self.has_passkey

    @property
    def missing(self) -> bool:
        """A passkey is required, and this person has none: say where to register one."""
        return bool(self.required) and not self.has_passkey


def passkey_sign_off(change: ChangeRequest, user: User, slots: list[str]) -> PasskeySignOff:
    if not slots:
        return PasskeySignOff(required=[], only=False, has_passkey=False)
    required = [s for s in slots if selectors.passkey_required(change, s)]
    return PasskeySignOff(
        required=required,
        only=len(required) == len(slots),
        has_passkey=has_active_passkey(user),
    )


def waiver_url(waiver: Waiver) -> str:
    return waiver.get_absolute_url()


def waiver_new_url(change: ChangeRequest, kind: str) -> str:
    base = reverse("waiver-new")
    return f"{base}?{urlencode({'change': change.reference, 'check': kind})}"


@dataclass
class WaiverLink:
    waiver: Waiver
    url: str
    reason: str = ""


@dataclass(frozen=True)
class CheckFix:
    """What would make a failed check pass, and where to do it (``url`` None: no page for it)."""

    text: str
    url: str | None = None


@dataclass
class CheckRow:
    """One required check as the change page shows it: its run and its verdict at one moment."""

    verdict: selectors.CheckVerdict
    waivers: list[WaiverLink] = field(default_factory=list)
    lapsed: list[WaiverLink] = field(default_factory=list)
    waiver_request_url: str | None = None
    fix: CheckFix | None = None

    @property
    def kind(self) -> str:
        return self.verdict.kind

    @property
    def label(self) -> str:
        return self.verdict.label

    @property
    def run(self) -> Any:
        return self.verdict.run

    @property
    def failed(self) -> bool:
        return self.run is not None and self.run.status == CheckStatus.FAILED

    @property
    def detail(self) -> str:
        """What else blocks a failed check when no lapsed waiver explains it (partial gate waivers)."""
        blocked_by = self.verdict.blocked_by or ""
        if self.lapsed or blocked_by == f"{self.label} failed":
            return ""
        return blocked_by


def check_rows(
    change: ChangeRequest,
    verdicts: list[selectors.CheckVerdict],
    now: datetime,
    user: User,
    roles: set[str],
) -> list[CheckRow]:
    # A waiver covers only a failed check of a change that can still move forward; the link
    # is offered to those who may grant it (not an officer, not the change's author).
    may_waive = change.status in OPEN_STATES and bool(
        can_grant_waiver(user, change.tenant, change, roles=roles)
    )
    rows = []
    for verdict in verdicts:
        row = CheckRow(
            verdict=verdict,
            waivers=[WaiverLink(w, waiver_url(w)) for w in verdict.waivers],
            lapsed=[
                WaiverLink(w, waiver_url(w), selectors.lapse_reason(w, now, change))
                for w in verdict.lapsed
            ],
        )
        if may_waive and row.failed and not verdict.passes:
            row.waiver_request_url = waiver_new_url(change, verdict.kind)
        rows.append(row)
    return rows


def may_record_postmortem(
    change: ChangeRequest, user: User, roles: set[str], items: list[ChangeItem]
) -> bool:
    """An emergency change's open follow-up, for someone ``permissions.can_record_postmortem`` allows."""
    if not change.emergency or change.postmortem_due_at is None:
        return False
    if change.postmortem_done_at is not None:
        return False
    owners = {i.artifact.owner_id for i in items if i.artifact.owner_id is not None}
    return bool(permissions.can_record_postmortem(user, change, roles=roles, owners=owners))


def may_switch_off(
    change: ChangeRequest, user: User, roles: set[str], items: list[ChangeItem]
) -> bool:
    """A promoted change that rollback cannot undo: a version it made active (still active)
    replaced nothing. Offered to whom ``permissions.can_deactivate`` allows, for every artifact."""
    if change.status != ChangeStatus.PROMOTED:
        return False
    first = [
        i for i in items if i.current_id is None and i.artifact.active_version_id == i.proposed_id
    ]
    return bool(first) and all(
        permissions.can_deactivate(user, i.artifact, roles=roles) for i in items
    )


def may_roll_out(
    change: ChangeRequest, user: User, roles: set[str], items: list[ChangeItem]
) -> bool:
    """A promoted change whose artifacts are bound to application slots waits for a rollout
    (promotion approved its versions; the rollout moves the pointers). Offered to those
    ``permissions.can_promote`` allows: who may bring a change to production."""
    if change.status != ChangeStatus.PROMOTED:
        return False
    if not hooks.slot_bound([i.artifact_id for i in items]):
        return False
    return bool(permissions.can_promote(user, change, roles=roles))


def gate_tables(run: Any) -> list[tuple[str, dict[str, Any]]]:
    result = getattr(run, "result", None)
    if not isinstance(result, dict):
        return []
    return [(path, report) for path, report in result.items() if isinstance(report, dict)]


def rule_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for rule in document.get("rules", []):
        when = rule.get("when", {})
        conditions = []
        if when.get("classes"):
            conditions.append("class is " + " or ".join(when["classes"]))
        for flag in approval_policy.FLAGS:
            if flag in when:
                conditions.append(f"{flag.replace('_', ' ')} is {'yes' if when[flag] else 'no'}")
        rows.append(
            {
                "name": rule.get("name", ""),
                "when": conditions or ["any change"],
                "require": labels(rule.get("require", [])),
                "final": rule.get("final", False),
                "promoted_by_owner": rule.get("promoted_by") == Promoter.OWNER,
            }
        )
    return rows


def evidence_versions(items: list[ChangeItem]) -> list[tuple[str, str]]:
    """The versions an evaluation report can be attached to: the change's proposed ones."""
    return [(i.proposed.pinned, i.proposed.path) for i in items]


def _publish_url(item: ChangeItem, anchor: str = "") -> str:
    return reverse("registry:publish", kwargs=item.artifact.url_kwargs()) + anchor


def _first(items: list[ChangeItem], classes: frozenset[str]) -> ChangeItem | None:
    return next((i for i in items if i.artifact.artifact_class.slug in classes), None)


def _unpinned(items: list[ChangeItem]) -> ChangeItem | None:
    """The first proposed prompt the model-pins check refuses (no pinned model in its metadata)."""
    for item in items:
        meta = item.proposed.metadata or {}
        if item.artifact.artifact_class.slug == ArtifactClass.PROMPT and not (
            meta.get("pinned_models") or meta.get("model_ids")
        ):
            return item
    return None


def _republish(item: ChangeItem | None, what: str, anchor: str = "") -> CheckFix:
    if item is None:
        return CheckFix(what)
    return CheckFix(
        f"{what}: publish a new version of {item.artifact.path}, then revise this change "
        "to propose it",
        _publish_url(item, anchor),
    )


def check_fixes(
    change: ChangeRequest, items: list[ChangeItem], *, evidence_form: bool
) -> dict[str, CheckFix]:
    """For each check that can fail, what would make it pass and the link to where it is done."""
    evidence = "#evidence-form" if evidence_form else "#evidence"
    metrics = ", ".join(check_catalog.SAFETY_METRICS)
    return {
        CheckKind.MODEL_PINS: _republish(
            _unpinned(items), "Pin a model in the version's metadata (Pinned models)", "#metadata"
        ),
        CheckKind.OFFLINE_EVALUATION: CheckFix(
            f"Attach an evaluation report with a safety metric ({metrics}) that does not "
            "regress against the current version",
            evidence,
        ),
        CheckKind.CHANGE_GATES: CheckFix(
            "Attach an evaluation report whose metrics meet every gate below", evidence
        ),
        CheckKind.POLICY: _republish(
            _first(items, check_catalog.POLICY_CLASSES),
            "Remove the prohibited content or personal data the log names",
        ),
        CheckKind.RULES_LINT: _republish(
            _first(items, check_catalog.RULESET_CLASSES), "Fix the problems the log lists"
        ),
        CheckKind.RULES_SIMULATION: CheckFix(
            "Name a golden corpus, or propose a ruleset that routes its cases as expected: "
            "revise this change",
            reverse("reviews:change-edit", args=[change.reference]),
        ),
        CheckKind.PACK_VERIFICATION: CheckFix(
            "A version no longer verifies (its content, hash or signature changed): tell an "
            "administrator; it cannot be fixed from here"
        ),
    }


def add_fixes(
    rows: list[CheckRow], change: ChangeRequest, items: list[ChangeItem], *, evidence_form: bool
) -> list[CheckRow]:
    """Give each failed, unwaived check of an open change what would make it pass."""
    if change.status not in OPEN_STATES and change.status != ChangeStatus.DRAFT:
        return rows
    fixes = check_fixes(change, items, evidence_form=evidence_form)
    for row in rows:
        if row.failed and not row.verdict.passes:
            row.fix = fixes.get(row.kind)
    return rows


def promotion_summary(change: ChangeRequest, items: list[ChangeItem]) -> list[str]:
    """What promoting ``change`` will do, one line per artifact, from what the service reads:
    its items (proposed, and the current version open changes follow) and which artifacts a
    rollout moves instead."""
    bound = hooks.slot_bound({i.artifact_id for i in items})
    lines = []
    for i in items:
        what = f"{change.reference} makes {i.artifact.path} {i.proposed.version} active"
        if i.artifact_id in bound:
            lines.append(
                f"{change.reference} approves {i.artifact.path} {i.proposed.version} for "
                "production; a rollout then makes it active."
            )
        elif i.current is not None:
            lines.append(f"{what}, replacing {i.current.version}.")
        else:
            lines.append(f"{what}; none is active now.")
    return lines


def rollback_summary(change: ChangeRequest, items: list[ChangeItem]) -> str:
    """What rolling back a promoted change restores (its versions, and what they replaced)."""
    parts = [
        f"{i.artifact.path} {i.current.version} (replacing {i.proposed.version})"
        for i in items
        if i.current is not None
    ]
    return f"Rollback restores {'; '.join(parts)}; {change.reference} reads rolled back."


@dataclass(frozen=True)
class ChecklistPanel:
    """The change page's deployment-checklist section: the latest one completed (``outdated``
    when it is of an earlier revision) and the form, for those who may complete it."""

    checklist: DeploymentChecklist | None
    outdated: bool
    form: DeploymentChecklistForm | None


def deployment_checklist_panel(
    change: ChangeRequest, *, offered: bool, form: DeploymentChecklistForm | None
) -> ChecklistPanel:
    latest = selectors.deployment_checklist_latest(change)
    outdated = latest is not None and latest.revision != change.revision
    if offered and form is None:
        # Completing it again for a new revision starts from what was said last time.
        initial = (
            {name: getattr(latest, name) for name in DeploymentChecklistForm.base_fields}
            if latest is not None
            else {}
        )
        form = DeploymentChecklistForm(initial=initial)
    return ChecklistPanel(checklist=latest, outdated=outdated, form=form if offered else None)


@dataclass(frozen=True)
class CriterionNote:
    """An unmet stage criterion of a proposed version: what is missing and where to add it."""

    version: str
    key: str
    label: str
    detail: str
    url: str


@dataclass(frozen=True)
class StageCriteria:
    """The proposed versions' unmet criteria for Active, split by their policies: ``blocking``
    (enforced: promotion is refused until they are met) and ``advisory`` (said, not refused)."""

    blocking: list[CriterionNote] = field(default_factory=list)
    advisory: list[CriterionNote] = field(default_factory=list)


def stage_criteria(change: ChangeRequest, items: list[ChangeItem]) -> StageCriteria:
    """What ``change_promote`` reads before anything else: each proposed version's criteria
    for Active (those of every stage before it), judged against this change."""
    found = StageCriteria()
    for item in items:
        version = item.proposed
        artifact = version.artifact
        policy = lifecycle.policy_for(artifact.tenant, artifact.artifact_class)
        subject = lifecycle.subject_for(version, change, policy)
        notes = [
            CriterionNote(
                version=version.path,
                key=j.criterion.key,
                label=j.criterion.label,
                detail=j.verdict.detail,
                url=j.verdict.url,
            )
            for j in lifecycle.unmet(version, Stage.ACTIVE, change, subject=subject)
        ]
        (found.blocking if policy.enforced else found.advisory).extend(notes)
    return found
