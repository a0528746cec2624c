"""Actions on a change from its page, and password confirmation.

Sign-off (approve, reject), submit, withdraw, promote, re-run, comment, post-mortem,
switch-off, deployment checklist.

Post/redirect/get: a failed action (an invalid form, a wrong password, a refusal) answers a
redirect back to the change page at the form used (:data:`ANCHORS`), its errors and inputs (never
the password) kept for that one GET (``governance.kernel.views.send_back``). The URL stays the
change's: a reload neither resubmits nor shows an action address.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from accounts.passkeys import relying_party
from governance.kernel import reauth
from governance.kernel.errors import DomainError, Forbidden
from governance.kernel.views import (
    attempt,
    json_action,
    json_body,
    post_only,
    send_back,
    submit,
)
from reviews import permissions, selectors, services
from reviews.choices import Decision
from reviews.forms import (
    CommentForm,
    DeactivateForm,
    DecisionForm,
    DeploymentChecklistForm,
    PasswordConfirmForm,
    PostmortemForm,
    RerunForm,
    WithdrawForm,
)
from reviews.models import Activation, Approval, ChangeRequest
from reviews.presenters import fillable_slots, passkey_sign_off
from reviews.views.artifacts import deliberately
from reviews.views.common import user_of

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
        "deployment-checklist",
    }
)


#: Where on the change page each action's form (or button) is: its errors are shown there.
ANCHORS = {
    "submit": "author-actions",
    "withdraw": "author-actions",
    "approve": "decide-form",
    "reject": "decide-form",
    "promote": "promotion",
    "rerun": "checks",
    "comment": "comment-form",
    "postmortem": "postmortem-form",
    "switch-off": "switch-off",
    "deployment-checklist": "deployment-checklist-form",
}
#: The longest sign-off comment (as the decide form's).
COMMENT_MAX = 5000
#: Where a sign-off refusal goes when this person is offered no sign-off form.
NO_SIGN_OFF_FORM = "approvals"


def _back(
    request: HttpRequest,
    change: ChangeRequest,
    action: str,
    *,
    form: Any = None,
    error: DomainError | None = None,
) -> HttpResponse:
    """The failed action, sent back to its form on the change page (post/redirect/get)."""
    return send_back(request, change.get_absolute_url(), ANCHORS[action], form=form, error=error)


def _decide(request: HttpRequest, change: ChangeRequest, decision: str) -> HttpResponse:
    """Approve or reject: with the passkey's answer (static/js/passkeys.js), else the password
    first (unless confirmed lately, or the slots need a passkey: then the service refuses
    without one), then the service."""
    user = user_of(request)
    status = selectors.approval_status(change)
    slots = fillable_slots(change, user, status)
    passkey = passkey_sign_off(change, user, slots)
    with_passkey = bool(request.POST.get("passkey_challenge"))
    form = DecisionForm(
        request.POST,
        slots=slots,
        needs_password=not reauth.recently_confirmed(request)
        and not with_passkey
        and not passkey.only,
    )

    def sign_off(data: dict[str, Any]) -> Approval:
        answer = None
        if data["passkey_challenge"]:
            answer = services.PasskeyAnswer(
                challenge_id=data["passkey_challenge"], credential=data["passkey_credential"]
            )
        elif form.needs_password:
            password = data.get("password", "")
            if not password:
                raise DomainError("Confirm your password to sign off.", field="password")
            if not reauth.confirm(request, password):
                raise Forbidden(
                    "That is not your password. Nothing was recorded.", field="password"
                )
        return services.approval_decide(
            change=change,
            actor=user,
            decision=decision,
            comment=data["comment"],
            requirement=data["requirement"] or None,
            passkey=answer,
        )

    done = submit(
        form,
        sign_off,
        aliases={
            "decision": "requirement",
            "status": "requirement",
            "passkey": "passkey_credential",
            "challenge": "passkey_challenge",
        },
        invalid_status=400,
    )
    if done.result is not None:
        verb = "Approved" if decision == Decision.APPROVE else "Rejected"
        how = f" with your passkey '{done.result.passkey.name}'" if done.result.passkey else ""
        messages.success(
            request,
            f"{verb} {change.reference} as {done.result.get_requirement_display()}{how}.",
        )
        return redirect(change)
    if not slots:
        # The form is not on the page for this person: what went wrong, atop the approvals.
        return send_back(request, change.get_absolute_url(), NO_SIGN_OFF_FORM, form=form)
    return _back(request, change, decision, form=form)


@post_only("reviews:change", "reference")
@json_action(aliases={"status": "decision"})
def passkey_challenge(request: HttpRequest, reference: str) -> dict[str, Any]:
    """The challenge for signing a decision with a passkey (the decide form's script): the
    statement the passkey will sign, its id, and the options for navigator.credentials.get."""
    change = selectors.change_by_reference(reference, visible_to=request.user)
    body = json_body(request)
    decision = body.get("decision")
    if decision not in Decision.values:
        raise DomainError("Decide 'approve' or 'reject'.", field="decision")
    requirement = body.get("requirement") or None
    if requirement is not None and not isinstance(requirement, str):
        raise DomainError("Name the role you sign off as.", field="requirement")
    comment = body.get("comment", "")
    if not isinstance(comment, str) or len(comment) > COMMENT_MAX:
        raise DomainError(
            f"The comment is text of at most {COMMENT_MAX} characters.", field="comment"
        )
    row, statement, options = services.sign_off_challenge(
        change=change,
        actor=user_of(request),
        decision=decision,
        requirement=requirement,
        comment=comment,
        party=relying_party(request),
    )
    return {"challenge_id": str(row.pk), "statement": statement, "options": json.loads(options)}


def _comment(request: HttpRequest, change: ChangeRequest) -> HttpResponse:
    form = CommentForm(request.POST)
    done = submit(
        form,
        lambda data: services.comment_add(
            change=change,
            actor=user_of(request),
            body=data["body"],
            anchor=services.line_anchor(data["path"], data["side"], data["line"]),
        ),
        invalid_status=400,
    )
    if not done.ok:
        return _back(request, change, "comment", form=form)
    messages.success(request, "Comment added.")
    return redirect(f"{change.get_absolute_url()}#comments")


def _submit_for_review(request: HttpRequest, change: ChangeRequest) -> str:
    services.change_submit(change=change, actor=user_of(request))
    return f"Submitted {change.reference} for review; its checks are running."


def _withdraw(request: HttpRequest, change: ChangeRequest) -> str:
    withdraw = WithdrawForm(request.POST)
    if not withdraw.is_valid():
        raise DomainError("The reason is at most 500 characters.", field="reason")
    services.change_withdraw(
        change=change, actor=user_of(request), reason=withdraw.cleaned_data["reason"]
    )
    return f"Withdrew {change.reference}."


def _promote(request: HttpRequest, change: ChangeRequest) -> str:
    deliberately(request, permissions.can_promote(user_of(request), change))
    services.change_promote(change=change, actor=user_of(request))
    return f"Promoted {change.reference}: its versions are now active."


def _rerun(request: HttpRequest, change: ChangeRequest) -> str:
    rerun = RerunForm(request.POST)
    if not rerun.is_valid():
        raise DomainError("There is no such check.", field="kind")
    runs = services.check_rerun(
        change=change, kind=rerun.cleaned_data["kind"] or None, actor=user_of(request)
    )
    return f"Running {len(runs)} check(s) again."


#: The buttons with no form of their own: each says what it did; a refusal is a message.
_BUTTONS: dict[str, Callable[[HttpRequest, ChangeRequest], str]] = {
    "submit": _submit_for_review,
    "withdraw": _withdraw,
    "promote": _promote,
    "rerun": _rerun,
}


def _press(request: HttpRequest, change: ChangeRequest, action: str) -> HttpResponse:
    done = attempt(request, lambda: _BUTTONS[action](request, change), say=False)
    if done.result is None:
        return _back(request, change, action, error=done.error)
    messages.success(request, done.result)
    return redirect(change)


def _switch_off(request: HttpRequest, change: ChangeRequest) -> HttpResponse:
    """The safety switch for a first promotion, from the change page (as rollback is)."""
    form = DeactivateForm(request.POST, needs_password=not reauth.recently_confirmed(request))

    def switch_off(data: dict[str, Any]) -> list[Activation]:
        for item in selectors.items_of(change):
            permissions.can_deactivate(user_of(request), item.artifact).require()
        reauth.require_password(request, data.get("password"))  # deliberate
        return services.change_switch_off(
            change=change, actor=user_of(request), reason=data["reason"]
        )

    done = submit(form, switch_off)
    if done.result is None:
        return _back(request, change, "switch-off", form=form)
    paths = ", ".join(a.artifact.path for a in done.result)
    messages.success(
        request, f"Switched {paths} off: no version is active; {change.reference} is rolled back."
    )
    return redirect(change)


def _record_postmortem(request: HttpRequest, change: ChangeRequest) -> HttpResponse:
    # A refusal too: its reason on the page (as a message when the form is not shown).
    form = PostmortemForm(request.POST)
    done = submit(
        form,
        lambda data: services.postmortem_record(
            change=change, actor=user_of(request), summary=data["summary"], url=data["url"]
        ),
        invalid_status=400,
    )
    if not done.ok:
        return _back(request, change, "postmortem", form=form)
    messages.success(request, f"Recorded the post-mortem of {change.reference}.")
    return redirect(f"{change.get_absolute_url()}#postmortem")


def _deployment_checklist(request: HttpRequest, change: ChangeRequest) -> HttpResponse:
    form = DeploymentChecklistForm(request.POST)
    done = submit(
        form,
        lambda data: services.deployment_checklist_complete(
            change=change,
            actor=user_of(request),
            resource_envelope=data["resource_envelope"],
            scaling_thresholds=data["scaling_thresholds"],
            logging_tracing=data["logging_tracing"],
            kill_switch=data["kill_switch"],
            notes=data["notes"],
        ),
        invalid_status=400,
    )
    if done.result is None:
        return _back(request, change, "deployment-checklist", form=form)
    messages.success(
        request,
        f"Completed the deployment checklist of {change.reference} (revision "
        f"{done.result.revision}).",
    )
    return redirect(f"{change.get_absolute_url()}#deployment-checklist")


#: The actions with a page of their own to answer with (a form, or the sign-off).
_PAGES: dict[str, Callable[[HttpRequest, ChangeRequest], HttpResponse]] = {
    "comment": _comment,
    "deployment-checklist": _deployment_checklist,
    "postmortem": _record_postmortem,
    "switch-off": _switch_off,
}


@login_required
@post_only("reviews:change", "reference")
def change_action(request: HttpRequest, reference: str, action: str) -> HttpResponse:
    if action not in ACTIONS:
        raise Http404(f"No action '{action}'.")
    change = selectors.change_by_reference(reference, visible_to=request.user)
    if action in (Decision.APPROVE, Decision.REJECT):
        return _decide(request, change, action)
    if action in _PAGES:
        return _PAGES[action](request, change)
    return _press(request, change, action)


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
