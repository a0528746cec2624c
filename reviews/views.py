"""Review pages: my reviews, change requests (open, read, sign off, promote), rollback, policy, notifications.

Views check the shape of input and turn DomainError into a form error or a message with
its 4xx status; every rule lives in ``reviews.services``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.safestring import SafeString
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import Tenant, User
from accounts.selectors import access_by_tenant, roles_in_tenant, tenant_for_user
from governance.kernel.errors import DomainError, NotFound
from governance.kernel.forms import form_error
from governance.kernel.notifications import notification_mark_read
from governance.models import Notification, Waiver
from governance.permissions import can_grant_waiver
from registry import selectors as registry_selectors
from registry.choices import ContentKind, Stage
from registry.diffs import VersionDiff, version_diff
from registry.highlight import highlight_json, highlight_text
from registry.models import Deprecation, Retirement, Version, VersionState
from reviews import hooks, permissions, reauth, selectors, services
from reviews import policy as approval_policy
from reviews.choices import (
    OPEN_STATES,
    ChangeStatus,
    CheckKind,
    CheckStatus,
    Decision,
    Requirement,
)
from reviews.filtersets import ChangeFilterSet
from reviews.forms import (
    ChangeForm,
    CommentForm,
    DeactivateForm,
    DecisionForm,
    PasswordConfirmForm,
    PolicyForm,
    PostmortemForm,
    RerunForm,
    ReviseForm,
    RollbackForm,
    WithdrawForm,
)
from reviews.models import ChangeItem, ChangeRequest
from reviews.record import signed_record

PAGE_SIZE = 25
#: How many of my own open changes "My reviews" lists (each costs a few queries).
MY_CHANGES_LIMIT = 20
#: "Waiting for you" shows this many rows, says how many there are and links to the full list.
MY_REVIEWS_LIMIT = 25
ACTIONS = frozenset(
    {
        "submit",
        "approve",
        "reject",
        "withdraw",
        "promote",
        "rerun",
        "comment",
        "postmortem",
        "switch-off",
    }
)
#: States in which the author still has something to do or wait for.
AUTHOR_OPEN_STATES = (
    ChangeStatus.DRAFT,
    ChangeStatus.IN_REVIEW,
    ChangeStatus.APPROVED,
    ChangeStatus.REJECTED,
)


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


def _change_or_404(request: HttpRequest, reference: str) -> ChangeRequest:
    try:
        return selectors.change_by_reference(reference, visible_to=request.user)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _labels(requirements: list[str]) -> list[str]:
    return [Requirement(r).label for r in requirements]


def _check_corpus(form: ChangeForm, tenant: Tenant) -> None:
    """Name the golden-corpus field when its reference does not resolve.

    The service reports a bad corpus reference under ``proposed`` (it resolves both the
    same way), which would point the author at the wrong field; it still checks it again.
    """
    text = form.cleaned_data.get("golden_corpus", "").strip()
    if not text:
        return
    try:
        registry_selectors.version_in_tenant(text, tenant=tenant)
    except DomainError as exc:
        form.add_error("golden_corpus", exc.message)


# --- my reviews and the list ---------------------------------------------------------------


def _waiting_on(change: ChangeRequest) -> list[str]:
    """What one of my own changes waits for, in words."""
    if change.status == ChangeStatus.DRAFT:
        return ["you: submit it for review"]
    if change.status == ChangeStatus.REJECTED:
        return ["you: revise and resubmit"]
    status = selectors.approval_status(change)
    waits = [f"approval from {label}" for label in _labels(status.missing)]
    waits += [f"check {text}" for text in selectors.check_summary(change).not_passed]
    if change.status == ChangeStatus.APPROVED and not waits:
        waits.append("promotion by an administrator")
    return waits


@login_required
def index(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    everything_waiting = selectors.waiting_slots(user)
    waiting = [
        (change, _labels(slots))
        for change, slots in selectors.waiting_changes(everything_waiting[:MY_REVIEWS_LIMIT])
    ]
    mine = list(
        selectors.changes_visible_to(user)
        .filter(author=user, status__in=AUTHOR_OPEN_STATES)
        .order_by("-created_at")[:MY_CHANGES_LIMIT]
    )
    return render(
        request,
        "reviews/index.html",
        {
            "waiting": waiting,
            "waiting_total": len(everything_waiting),
            "mine": [(change, _waiting_on(change)) for change in mine],
            "access": access_by_tenant(user),
        },
    )


@login_required
def change_list(request: HttpRequest) -> HttpResponse:
    base = selectors.changes_visible_to(request.user)
    filters = ChangeFilterSet(request.GET or None, queryset=base, request=request)
    qs = filters.qs if filters.is_bound and filters.is_valid() else base
    page = Paginator(qs.order_by("-year", "-number"), PAGE_SIZE).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "reviews/changes.html",
        {"filters": filters, "page": page, "query": params.urlencode()},
    )


# --- opening and revising ----------------------------------------------------------------


def _open_change(request: HttpRequest, form: ChangeForm) -> HttpResponse | int:
    """Open the change the form describes: a redirect, or the 4xx status (errors on the form)."""
    data = form.cleaned_data
    try:
        tenant = tenant_for_user(request.user, data["tenant"])
    except DomainError as exc:
        form_error(form, exc)
        return exc.status_code
    _check_corpus(form, tenant)
    if form.errors:
        return 400
    try:
        change = services.change_create(
            tenant=tenant,
            actor=_user(request),
            title=data["title"],
            description=data["description"],
            risk_note=data["risk_note"],
            rollback_plan=data["rollback_plan"],
            proposed=form.proposed_list(),
            privacy_related=data["privacy_related"],
            external_egress=data["external_egress"],
            emergency=data["emergency"],
            golden_corpus=data["golden_corpus"].strip() or None,
        )
    except DomainError as exc:
        form_error(form, exc)
        return exc.status_code
    messages.success(
        request, f"Opened {change.reference} as a draft. Submit it when it is ready for review."
    )
    return redirect(change)


@login_required
def change_new(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    tenants = [row.tenant.slug for row in access_by_tenant(user)]
    initial: dict[str, Any] = {}
    propose = request.GET.get("propose", "").strip()
    if propose:
        initial["proposed"] = propose
        try:
            tenant_slug = registry_selectors.parse(propose).tenant
        except DomainError:
            tenant_slug = None
        if tenant_slug in tenants:
            initial["tenant"] = tenant_slug
    form = ChangeForm(request.POST or None, tenants=tenants, initial=initial)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            outcome = _open_change(request, form)
            if isinstance(outcome, HttpResponse):
                return outcome
            status = outcome
    return render(
        request, "reviews/change_form.html", {"form": form, "change": None}, status=status
    )


@login_required
def change_edit(request: HttpRequest, reference: str) -> HttpResponse:
    user = _user(request)
    change = _change_or_404(request, reference)
    allowed = permissions.can_act_as_author(user, change, "revise")
    if not allowed:  # no form this person cannot send: the change's page says why
        messages.error(request, allowed.reason)
        return _change_page(request, change, status=403)
    items = selectors.items_of(change)
    initial = ReviseForm.initial_for(change, items)
    form = ReviseForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            proposed = form.proposed_list()
            _check_corpus(form, change.tenant)
            if not form.errors:
                try:
                    change = services.change_revise(
                        change=change,
                        actor=user,
                        reason=data["reason"],
                        # Re-proposing the same lines would only churn the items.
                        proposed=None if proposed == initial["proposed"].splitlines() else proposed,
                        title=data["title"],
                        description=data["description"],
                        risk_note=data["risk_note"],
                        rollback_plan=data["rollback_plan"],
                        privacy_related=data["privacy_related"],
                        external_egress=data["external_egress"],
                        emergency=data["emergency"],
                        golden_corpus=data["golden_corpus"].strip(),
                    )
                except DomainError as exc:
                    form_error(form, exc)
                    status = exc.status_code
                else:
                    messages.success(
                        request,
                        f"Revised {change.reference} to revision {change.revision}; it is a draft "
                        "again and earlier approvals no longer count. Submit it when ready.",
                    )
                    return redirect(change)
    return render(
        request, "reviews/change_form.html", {"form": form, "change": change}, status=status
    )


# --- the change page ----------------------------------------------------------------------


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


def _content_html(version: Version) -> SafeString | None:
    if version.content_kind == ContentKind.TEXT:
        return highlight_text(version.content_text)
    if version.content_kind == ContentKind.JSON:
        return highlight_json(version.content_json)
    return None


def _item_views(
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
                content_html=None if current else _content_html(item.proposed),
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


def _fillable_slots(
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


def _waiver_url(waiver: Waiver) -> str:
    return waiver.get_absolute_url()


def _waiver_new_url(change: ChangeRequest, kind: str) -> str:
    base = reverse("waiver-new")
    return f"{base}?{urlencode({'change': change.reference, 'check': kind})}"


@dataclass
class WaiverLink:
    waiver: Waiver
    url: str
    reason: str = ""


@dataclass
class CheckRow:
    """One required check as the change page shows it: its run and its verdict at one moment."""

    verdict: selectors.CheckVerdict
    waivers: list[WaiverLink] = field(default_factory=list)
    lapsed: list[WaiverLink] = field(default_factory=list)
    waiver_request_url: str | None = None

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


def _check_rows(
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
            waivers=[WaiverLink(w, _waiver_url(w)) for w in verdict.waivers],
            lapsed=[
                WaiverLink(w, _waiver_url(w), selectors.lapse_reason(w, now, change))
                for w in verdict.lapsed
            ],
        )
        if may_waive and row.failed and not verdict.passes:
            row.waiver_request_url = _waiver_new_url(change, verdict.kind)
        rows.append(row)
    return rows


def _may_record_postmortem(
    change: ChangeRequest, user: User, roles: set[str], items: list[ChangeItem]
) -> bool:
    """An emergency change's open follow-up, for someone ``permissions.can_record_postmortem`` allows."""
    if not change.emergency or change.postmortem_due_at is None:
        return False
    if change.postmortem_done_at is not None:
        return False
    owners = {i.artifact.owner_id for i in items if i.artifact.owner_id is not None}
    return bool(permissions.can_record_postmortem(user, change, roles=roles, owners=owners))


def _may_switch_off(
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


def _may_roll_out(
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


def _gate_tables(run: Any) -> list[tuple[str, dict[str, Any]]]:
    result = getattr(run, "result", None)
    if not isinstance(result, dict):
        return []
    return [(path, report) for path, report in result.items() if isinstance(report, dict)]


def _change_page(
    request: HttpRequest,
    change: ChangeRequest,
    *,
    decide_form: DecisionForm | None = None,
    comment_form: CommentForm | None = None,
    postmortem_form: PostmortemForm | None = None,
    switch_off_form: DeactivateForm | None = None,
    status: int = 200,
) -> HttpResponse:
    user = _user(request)
    items = selectors.items_of(change)
    roles = roles_in_tenant(user, change.tenant)
    may_act_as_author = permissions.can_act_as_author(user, change, roles=roles)
    actions = permissions.change_actions(user, change, roles=roles)
    is_author = user.pk == change.author_id
    approvals = selectors.approval_status(change)
    # One moment for every verdict on the page, as for a decision; a promoted change is
    # shown as it was judged when it was promoted (a waiver that expired since does not
    # make it look blocked).
    now = timezone.now()
    judged_at = change.promoted_at or now
    verdicts = selectors.check_verdicts(change, judged_at)
    runs = {v.kind: v.run for v in verdicts}
    may_record_postmortem = _may_record_postmortem(change, user, roles, items)
    if may_record_postmortem and postmortem_form is None:
        postmortem_form = PostmortemForm()
    elif postmortem_form is not None and not may_record_postmortem:
        # The form is not on the page (already recorded, say): the refusal is a message.
        for errors in postmortem_form.errors.values():
            for error in errors:
                messages.error(request, str(error))
    slots = _fillable_slots(change, user, approvals)
    if slots and decide_form is None:
        decide_form = DecisionForm(
            slots=slots, needs_password=not reauth.recently_confirmed(request)
        )
    open_for_review = change.status in OPEN_STATES
    return render(
        request,
        "reviews/change.html",
        {
            "change": change,
            "items": _item_views(change, items, user, roles),
            "approvals": approvals,
            "checks": _check_rows(change, verdicts, judged_at, user, roles),
            "checks_judged_at": judged_at,
            "all_checks_passed": all(v.passes for v in verdicts),
            "gate_tables": _gate_tables(runs.get(CheckKind.CHANGE_GATES)),
            "reports": list(selectors.evaluation_reports(change).order_by("-created_at")),
            "blockers": selectors.promotion_blockers(change, now) if open_for_review else [],
            "postmortem_form": postmortem_form if may_record_postmortem else None,
            "postmortem_overdue": change.emergency
            and change.postmortem_due_at is not None
            and change.postmortem_done_at is None
            and now > change.postmortem_due_at,
            "comments": list(change.comments.select_related("author").order_by("created_at")),
            "timeline": list(selectors.timeline(change)),
            "decide_form": decide_form if slots else None,
            "comment_form": comment_form or CommentForm(),
            "is_author": is_author,
            "can_act_as_author": bool(may_act_as_author),
            "can_submit": actions.submit,
            "can_edit": actions.revise,
            "can_withdraw": actions.withdraw,
            "can_promote": actions.promote,
            "can_rerun": actions.rerun_checks,
            "switch_off_form": (switch_off_form or DeactivateForm())
            if _may_switch_off(change, user, roles, items)
            else None,
            "reauth_fresh": reauth.recently_confirmed(request),
            "may_roll_out": _may_roll_out(change, user, roles, items),
        },
        status=status,
    )


@login_required
def change_detail(request: HttpRequest, reference: str) -> HttpResponse:
    return _change_page(request, _change_or_404(request, reference))


@login_required
def change_record(request: HttpRequest, reference: str) -> HttpResponse:
    change = _change_or_404(request, reference)
    try:
        body = signed_record(change)
    except DomainError as exc:
        return JsonResponse({"error": exc.message}, status=exc.status_code)
    response = JsonResponse(body, json_dumps_params={"indent": 2, "ensure_ascii": False})
    response["Content-Disposition"] = f'attachment; filename="{change.reference}.json"'
    return response


# --- actions on a change ------------------------------------------------------------------


def _decide(request: HttpRequest, change: ChangeRequest, decision: str) -> HttpResponse:
    """Approve or reject: the password first (unless confirmed lately), then the service."""
    user = _user(request)
    status = selectors.approval_status(change)
    slots = _fillable_slots(change, user, status)
    form = DecisionForm(
        request.POST, slots=slots, needs_password=not reauth.recently_confirmed(request)
    )
    code = 400
    if form.is_valid():
        password = form.cleaned_data.get("password", "")
        if form.needs_password and not password:
            form.add_error("password", "Confirm your password to sign off.")
        elif form.needs_password and not reauth.confirm(request, password):
            form.add_error("password", "That is not your password. Nothing was recorded.")
            code = 403
        else:
            try:
                approval = services.approval_decide(
                    change=change,
                    actor=user,
                    decision=decision,
                    comment=form.cleaned_data["comment"],
                    requirement=form.cleaned_data["requirement"] or None,
                )
            except DomainError as exc:
                form_error(form, exc, {"decision": "requirement", "status": "requirement"})
                code = exc.status_code
            else:
                verb = "Approved" if decision == Decision.APPROVE else "Rejected"
                messages.success(
                    request,
                    f"{verb} {change.reference} as {approval.get_requirement_display()}.",
                )
                return redirect(change)
    if not slots:
        # The form is not on the page for this person: say what went wrong as a message.
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
    return _change_page(request, change, decide_form=form, status=code)


def _simple_action(request: HttpRequest, change: ChangeRequest, action: str) -> HttpResponse:
    user = _user(request)
    if action == "comment":
        form = CommentForm(request.POST)
        if not form.is_valid():
            return _change_page(request, change, comment_form=form, status=400)
        try:
            services.comment_add(change=change, actor=user, body=form.cleaned_data["body"])
        except DomainError as exc:
            form_error(form, exc)
            return _change_page(request, change, comment_form=form, status=exc.status_code)
        messages.success(request, "Comment added.")
        return redirect(f"{change.get_absolute_url()}#comments")
    if action == "postmortem":
        return _record_postmortem(request, change)
    if action == "switch-off":
        return _switch_off(request, change)
    try:
        if action == "submit":
            services.change_submit(change=change, actor=user)
            text = f"Submitted {change.reference} for review; its checks are running."
        elif action == "withdraw":
            withdraw = WithdrawForm(request.POST)
            if not withdraw.is_valid():
                raise DomainError("The reason is at most 500 characters.", field="reason")
            services.change_withdraw(
                change=change, actor=user, reason=withdraw.cleaned_data["reason"]
            )
            text = f"Withdrew {change.reference}."
        elif action == "promote":
            services.change_promote(change=change, actor=user)
            text = f"Promoted {change.reference}: its versions are now active."
        else:  # rerun
            rerun = RerunForm(request.POST)
            if not rerun.is_valid():
                raise DomainError("There is no such check.", field="kind")
            runs = services.check_rerun(
                change=change, kind=rerun.cleaned_data["kind"] or None, actor=user
            )
            text = f"Running {len(runs)} check(s) again."
    except DomainError as exc:
        messages.error(request, exc.message)
        return _change_page(request, change, status=exc.status_code)
    messages.success(request, text)
    return redirect(change)


def _switch_off(request: HttpRequest, change: ChangeRequest) -> HttpResponse:
    """The safety switch for a first promotion, from the change page (as rollback is)."""
    form = DeactivateForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, f"Why switch it off: {error}")
        return _change_page(request, change, switch_off_form=form, status=400)
    try:
        off = services.change_switch_off(
            change=change, actor=_user(request), reason=form.cleaned_data["reason"]
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return _change_page(request, change, switch_off_form=form, status=exc.status_code)
    paths = ", ".join(a.artifact.path for a in off)
    messages.success(
        request, f"Switched {paths} off: no version is active; {change.reference} is rolled back."
    )
    return redirect(change)


def _record_postmortem(request: HttpRequest, change: ChangeRequest) -> HttpResponse:
    user = _user(request)
    form = PostmortemForm(request.POST)
    if not form.is_valid():
        return _change_page(request, change, postmortem_form=form, status=400)
    try:
        services.postmortem_record(
            change=change,
            actor=user,
            summary=form.cleaned_data["summary"],
            url=form.cleaned_data["url"],
        )
    except DomainError as exc:  # a refusal too: its reason on the page (as a message: no form)
        form_error(form, exc)
        return _change_page(request, change, postmortem_form=form, status=exc.status_code)
    messages.success(request, f"Recorded the post-mortem of {change.reference}.")
    return redirect(f"{change.get_absolute_url()}#postmortem")


@login_required
@require_POST
def change_action(request: HttpRequest, reference: str, action: str) -> HttpResponse:
    if action not in ACTIONS:
        raise Http404(f"No action '{action}'.")
    change = _change_or_404(request, reference)
    if action in (Decision.APPROVE, Decision.REJECT):
        return _decide(request, change, action)
    return _simple_action(request, change, action)


@login_required
@require_http_methods(["GET", "POST"])
def confirm_password(request: HttpRequest) -> HttpResponse:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = ""
    form = PasswordConfirmForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            if reauth.confirm(request, form.cleaned_data["password"]):
                messages.success(request, "Password confirmed: you can sign off for a few minutes.")
                return redirect(target or reverse("reviews:index"))
            form.add_error("password", "That is not your password.")
            status = 403
    return render(
        request,
        "reviews/confirm.html",
        {"form": form, "next": target, "fresh": reauth.recently_confirmed(request)},
        status=status,
    )


@login_required
@require_POST
def rollback(request: HttpRequest, cls: str, tenant: str, slug: str) -> HttpResponse:
    from registry import views as registry_views

    try:
        artifact = registry_selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    form = RollbackForm(request.POST, artifact=artifact)
    code = 400
    if form.is_valid():
        try:
            activation = services.rollback(
                artifact=artifact,
                actor=_user(request),
                reason=form.cleaned_data["reason"],
                target=form.target_reference(),
                override_reason=form.cleaned_data["override_reason"],
            )
        except DomainError as exc:
            messages.error(request, exc.message)
            code = exc.status_code
        else:
            restored = activation.version.version if activation.version else "none"
            undone = f"; {activation.change.reference} is rolled back" if activation.change else ""
            messages.success(
                request,
                f"Rolled back {artifact.path}: {restored} is active again "
                f"(was {activation.previous.version if activation.previous else 'none'}){undone}.",
            )
            return redirect(artifact)
    else:
        for field, errors in form.errors.items():
            label = form.fields[field].label if field in form.fields else ""
            for error in errors:
                messages.error(request, f"{label}: {error}" if label else str(error))
    # Show the artifact page again, with the message and the refusal's status.
    response = registry_views.artifact(request, cls=cls, tenant=tenant, slug=slug)
    response.status_code = code
    return response


@login_required
@require_POST
def deactivate(request: HttpRequest, cls: str, tenant: str, slug: str) -> HttpResponse:
    """The safety switch: the artifact keeps no active version (resolution answers 404)."""
    from registry import views as registry_views

    try:
        artifact = registry_selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    form = DeactivateForm(request.POST)
    code = 400
    if form.is_valid():
        try:
            activation = services.artifact_deactivate(
                artifact=artifact, actor=_user(request), reason=form.cleaned_data["reason"]
            )
        except DomainError as exc:
            messages.error(request, exc.message)
            code = exc.status_code
        else:
            was = activation.previous.version if activation.previous else "none"
            messages.success(
                request, f"Switched {artifact.path} off: no version is active (was {was})."
            )
            return redirect(artifact)
    else:
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, f"Why switch it off: {error}")
    response = registry_views.artifact(request, cls=cls, tenant=tenant, slug=slug)
    response.status_code = code
    return response


# --- approval policy ----------------------------------------------------------------------


def _rule_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
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
                "require": _labels(rule.get("require", [])),
                "final": rule.get("final", False),
            }
        )
    return rows


@login_required
def policy(request: HttpRequest, tenant: str) -> HttpResponse:
    try:
        found = tenant_for_user(request.user, tenant)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    allowed = permissions.can_change_policy(request.user, found)
    if request.method == "POST" and not allowed:  # no form on the page: the reason, above it
        messages.error(request, allowed.reason)
    row, document = selectors.effective_policy(found)
    form = PolicyForm(request.POST or None, initial={"rules": json.dumps(document, indent=2)})
    status = 200
    if request.method == "POST" and not allowed:
        status = 403
    elif request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                saved = services.approval_policy_update(
                    tenant=found,
                    rules=form.cleaned_data["rules"],
                    reason=form.cleaned_data["reason"],
                    actor=_user(request),
                )
            except DomainError as exc:
                form_error(form, exc, {"postmortem_days": "rules"})
                status = exc.status_code
            else:
                messages.success(
                    request, f"Saved version {saved.number} of {found.slug}'s approval policy."
                )
                return redirect("reviews:policy", tenant=found.slug)
    return render(
        request,
        "reviews/policy.html",
        {
            "tenant": found,
            "row": row,
            "own": row is not None and row.tenant_id == found.pk,
            "document": document,
            "rules": _rule_rows(document),
            "policy_html": highlight_json(document),
            "history": selectors.policy_history(found)[:50],
            "form": form if allowed else None,
        },
        status=status,
    )


# --- notifications ------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def notifications(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if request.method == "POST":
        count = notification_mark_read(user=user)
        messages.success(request, f"Marked {count} notification(s) read.")
        return redirect("reviews:notifications")
    rows = Notification.objects.filter(user=user).select_related("tenant").order_by("-created_at")
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "reviews/notifications.html",
        {"page": page, "query": ""},
    )
