"""What the review pages share: the signed-in user and the change page.

A change another tenant holds, or none, is the 404 page: ``selectors.change_by_reference``
raises ``NotFound`` and the ``DomainErrorMiddleware`` answers it.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from accounts.models import User
from accounts.selectors import roles_in_tenant
from governance.kernel import reauth
from governance.kernel.views import SentBack, bring_back, say_above, sent_back
from reviews import permissions, presenters, selectors
from reviews.choices import OPEN_STATES, ChangeStatus, CheckKind
from reviews.forms import (
    CommentForm,
    DeactivateForm,
    DecisionForm,
    DeploymentChecklistForm,
    EvidenceForm,
    PostmortemForm,
    PromoteForm,
)
from reviews.models import ChangeRequest

#: The change page's forms, by the anchor an action failing on them sends back to.
FORM_ANCHORS = frozenset(
    {"decide-form", "comment-form", "postmortem-form", "switch-off", "deployment-checklist-form"}
)


def user_of(request: HttpRequest) -> User:
    return cast(User, request.user)


def _placed(
    request: HttpRequest, back: SentBack | None, *, shown: dict[str, bool]
) -> dict[str, Any] | None:
    """Where what a failed action sent back goes: a form on the page shows it itself; a form
    no longer on the page (signed off meanwhile, say) has it said above the page; a button's
    refusal is returned, for the top of the button's section."""
    if back is None:
        return None
    if back.anchor in FORM_ANCHORS:
        if not shown.get(back.anchor, True):
            for message in back.messages():
                messages.error(request, message)
        return None
    return {"anchor": back.anchor, "messages": back.messages()}


def _promote_form(
    back: SentBack | None,
    refusal: dict[str, Any] | None,
    *,
    offered: bool,
    needs_password: bool,
) -> tuple[PromoteForm | None, dict[str, Any] | None]:
    """The promote form (if offered) and what is left to say atop the promotion section: a
    refused promotion is said atop the promote form itself, where the person looks; atop the
    section only for someone not offered the form."""
    if not offered:
        return None, refusal
    form = bring_back(
        back, "promotion", lambda d: PromoteForm(d, needs_password=needs_password)
    ) or PromoteForm(needs_password=needs_password)
    if refusal is not None and refusal["anchor"] == "promotion":
        refusal = None
    return form, refusal


def _decide_form(
    back: SentBack | None, posted: forms.Form | None, *, slots: list[str], needs_password: bool
) -> DecisionForm | None:
    """The sign-off form: the one just posted, else the one sent back, else a new one (when
    this person has a slot to fill)."""
    if isinstance(posted, DecisionForm):
        return posted
    brought = bring_back(
        back, "decide-form", lambda d: DecisionForm(d, slots=slots, needs_password=needs_password)
    )
    if brought is None and slots:
        return DecisionForm(slots=slots, needs_password=needs_password)
    return brought


def change_page(
    request: HttpRequest,
    change: ChangeRequest,
    *,
    posted: forms.Form | None = None,
    status: int = 200,
) -> HttpResponse:
    """The change page; ``posted`` is the form just sent from it (shown again, with its errors).

    A GET after a failed action (post/redirect/get: ``reviews.views.actions``) shows the form
    used again with its errors on top, or the refusal atop the buttons' section."""
    back = sent_back(request) if posted is None else None
    user = user_of(request)
    approvals = selectors.approval_status(change)
    slots = presenters.fillable_slots(change, user, approvals)
    needs_password = not reauth.recently_confirmed(request)
    # Where every slot this person can fill needs a passkey, no password is offered.
    passkey = presenters.passkey_sign_off(change, user, slots)
    decide_form = _decide_form(
        back, posted, slots=slots, needs_password=needs_password and not passkey.only
    )
    comment_form = posted if isinstance(posted, CommentForm) else None
    comment_form = comment_form or bring_back(back, "comment-form", CommentForm)
    postmortem_form = posted if isinstance(posted, PostmortemForm) else None
    postmortem_form = postmortem_form or bring_back(back, "postmortem-form", PostmortemForm)
    switch_off_form = posted if isinstance(posted, DeactivateForm) else None
    switch_off_form = switch_off_form or bring_back(
        back, "switch-off", lambda d: DeactivateForm(d, needs_password=needs_password)
    )
    evidence_form = posted if isinstance(posted, EvidenceForm) else None
    items = selectors.items_of(change)
    roles = roles_in_tenant(user, change.tenant)
    may_act_as_author = permissions.can_act_as_author(user, change, roles=roles)
    actions = permissions.change_actions(user, change, roles=roles)
    is_author = user.pk == change.author_id
    # One moment for every verdict on the page, as for a decision; a promoted change is
    # shown as it was judged when it was promoted (a waiver that expired since does not
    # make it look blocked).
    now = timezone.now()
    judged_at = change.promoted_at or now
    verdicts = selectors.check_verdicts(change, judged_at)
    runs = {v.kind: v.run for v in verdicts}
    may_record_postmortem = presenters.may_record_postmortem(change, user, roles, items)
    if may_record_postmortem and postmortem_form is None:
        postmortem_form = PostmortemForm()
    elif postmortem_form is not None and not may_record_postmortem:
        # The form is not on the page (already recorded, say): the refusal is a message.
        say_above(request, postmortem_form)
    if evidence_form is not None and not actions.attach_evidence:
        say_above(request, evidence_form)  # the form is not on the page: its refusal is a message
    may_switch_off = presenters.may_switch_off(change, user, roles, items)
    refusal = _placed(
        request,
        back,
        shown={
            "decide-form": bool(slots),
            "switch-off": may_switch_off,
            "deployment-checklist-form": actions.complete_checklist,
        },
    )
    checklist = presenters.deployment_checklist_panel(
        change,
        offered=actions.complete_checklist,
        form=bring_back(back, "deployment-checklist-form", DeploymentChecklistForm),
    )
    promote_form, refusal = _promote_form(
        back, refusal, offered=actions.promote, needs_password=needs_password
    )
    open_for_review = change.status in OPEN_STATES
    item_views = presenters.item_views(change, items, user, roles)
    comments = presenters.line_comments(
        change,
        item_views,
        list(change.comments.select_related("author").order_by("created_at")),
        may_comment=bool(permissions.can_comment(user, change)),
    )
    anchor = None if comment_form else presenters.anchor_preview(item_views, request.GET)
    if comment_form is None:
        comment_form = CommentForm(
            initial={"path": anchor.path, "side": anchor.side, "line": anchor.line}
            if anchor
            else {}
        )
        if anchor:
            comment_form.fields["body"].widget.attrs["autofocus"] = True
    elif comment_form.data.get("line"):
        anchor = presenters.anchor_preview(item_views, comment_form.data)
    fresh = not needs_password
    recertification = selectors.recertification_of(change)
    return render(
        request,
        "reviews/change.html",
        {
            "change": change,
            "items": item_views,
            "approvals": approvals,
            "checks": presenters.add_fixes(
                presenters.check_rows(change, verdicts, judged_at, user, roles),
                change,
                items,
                evidence_form=actions.attach_evidence,
            ),
            "checks_judged_at": judged_at,
            "all_checks_passed": all(v.passes for v in verdicts),
            "gate_tables": presenters.gate_tables(runs.get(CheckKind.CHANGE_GATES)),
            "reports": list(selectors.evaluation_reports(change).order_by("-created_at")),
            "blockers": selectors.promotion_blockers(change, now) if open_for_review else [],
            # The stage criteria promotion checks first: refusals when enforced, else notes.
            "criteria": presenters.stage_criteria(change, items) if open_for_review else None,
            "postmortem_form": postmortem_form if may_record_postmortem else None,
            "postmortem_overdue": change.emergency
            and change.postmortem_due_at is not None
            and change.postmortem_done_at is None
            and now > change.postmortem_due_at,
            "comments": comments,
            "comment_anchor": anchor,
            "timeline": list(selectors.timeline(change)),
            "decide_form": decide_form if slots else None,
            "passkey_sign_off": passkey,
            "comment_form": comment_form,
            "evidence_form": (
                evidence_form or EvidenceForm(versions=presenters.evidence_versions(items))
            )
            if actions.attach_evidence
            else None,
            "is_author": is_author,
            "can_act_as_author": bool(may_act_as_author),
            "can_submit": actions.submit,
            "can_edit": actions.revise,
            "can_withdraw": actions.withdraw,
            "can_promote": actions.promote,
            # Promotion and rollback are deliberate: what they will change, and the password.
            "promote_form": promote_form,
            "promotion_summary": presenters.promotion_summary(change, items)
            if actions.promote
            else [],
            "rollback_summary": presenters.rollback_summary(change, items)
            if change.status == ChangeStatus.PROMOTED
            else "",
            "can_rerun": actions.rerun_checks,
            "switch_off_form": (switch_off_form or DeactivateForm(needs_password=not fresh))
            if may_switch_off
            else None,
            "refusal": refusal,
            "checklist": checklist,
            "recertification": recertification,
            "recertification_overdue": recertification is not None
            and recertification.certified_at is None
            and now > recertification.due_at,
            "recertification_propose": "\n".join(i.proposed.path for i in items),
            "reauth_fresh": fresh,
            "may_roll_out": presenters.may_roll_out(change, user, roles, items),
        },
        status=status,
    )
