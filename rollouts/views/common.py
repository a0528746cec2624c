"""What the rollout pages share: the signed-in user, the lookups a missing object turns into
the 404 page, and the refusal ``submit`` put on a form."""

from __future__ import annotations

from typing import Any, cast

from django.http import Http404, HttpRequest

from accounts.models import User
from rollouts import (
    selectors,
)
from rollouts.models import Application, Rollout, Slot


def user_of(request: HttpRequest) -> User:
    return cast(User, request.user)


def rollout_or_404(request: HttpRequest, number: int) -> Rollout:
    return selectors.rollout_by_number(request.user, number)  # NotFound: the 404 page


def application_or_404(request: HttpRequest, slug: str) -> Application:
    return selectors.application_by_slug(request.user, slug)  # NotFound: the 404 page


def slot_or_404(request: HttpRequest, slug: str, name: str) -> Slot:
    application = application_or_404(request, slug)
    slot = selectors.slots_of(application).filter(name=name).first()
    if slot is None:
        raise Http404(f"No slot '{name}' in {application.slug}.")
    return slot


def form_refusal(form: Any) -> str:
    """The refusal ``submit`` put on ``form``: the only error of a form that was valid."""
    return next(str(errors[0]) for errors in form.errors.values())
