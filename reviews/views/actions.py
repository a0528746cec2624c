"""Actions on a change from its page: sign-off (approve, reject), submit, withdraw, promote, re-run, comment, post-mortem, switch-off; password confirmation."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from governance.kernel.errors import DomainError
from governance.kernel.forms import form_error
from reviews import reauth, selectors, services
from reviews.choices import Decision
from reviews.forms import (
    CommentForm,
    DeactivateForm,
    DecisionForm,
    PasswordConfirmForm,
    PostmortemForm,
    RerunForm,
    WithdrawForm,
)
from reviews.models import ChangeRequest
from reviews.presenters import fillable_slots
from reviews.views.common import change_or_404, change_page, user_of

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


def _decide(request: HttpRequest, change: ChangeRequest, decision: str) -> HttpResponse:
    """Approve or reject: the password first (unless confirmed lately), then the service."""
    user = user_of(request)
    status = selectors.approval_status(change)
    slots = fillable_slots(change, user, status)
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
    return change_page(request, change, decide_form=form, status=code)


def _simple_action(request: HttpRequest, change: ChangeRequest, action: str) -> HttpResponse:
    user = user_of(request)
    if action == "comment":
        form = CommentForm(request.POST)
        if not form.is_valid():
            return change_page(request, change, comment_form=form, status=400)
        try:
            services.comment_add(change=change, actor=user, body=form.cleaned_data["body"])
        except DomainError as exc:
            form_error(form, exc)
            return change_page(request, change, comment_form=form, status=exc.status_code)
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
        return change_page(request, change, status=exc.status_code)
    messages.success(request, text)
    return redirect(change)


def _switch_off(request: HttpRequest, change: ChangeRequest) -> HttpResponse:
    """The safety switch for a first promotion, from the change page (as rollback is)."""
    form = DeactivateForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, f"Why switch it off: {error}")
        return change_page(request, change, switch_off_form=form, status=400)
    try:
        off = services.change_switch_off(
            change=change, actor=user_of(request), reason=form.cleaned_data["reason"]
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return change_page(request, change, switch_off_form=form, status=exc.status_code)
    paths = ", ".join(a.artifact.path for a in off)
    messages.success(
        request, f"Switched {paths} off: no version is active; {change.reference} is rolled back."
    )
    return redirect(change)


def _record_postmortem(request: HttpRequest, change: ChangeRequest) -> HttpResponse:
    user = user_of(request)
    form = PostmortemForm(request.POST)
    if not form.is_valid():
        return change_page(request, change, postmortem_form=form, status=400)
    try:
        services.postmortem_record(
            change=change,
            actor=user,
            summary=form.cleaned_data["summary"],
            url=form.cleaned_data["url"],
        )
    except DomainError as exc:  # a refusal too: its reason on the page (as a message: no form)
        form_error(form, exc)
        return change_page(request, change, postmortem_form=form, status=exc.status_code)
    messages.success(request, f"Recorded the post-mortem of {change.reference}.")
    return redirect(f"{change.get_absolute_url()}#postmortem")


@login_required
@require_POST
def change_action(request: HttpRequest, reference: str, action: str) -> HttpResponse:
    if action not in ACTIONS:
        raise Http404(f"No action '{action}'.")
    change = change_or_404(request, reference)
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
