"""What the management endpoints share: path parameters, the acting user, lookups and the
detail answered after a service call."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from accounts.selectors import tenants_visible_to
from governance.kernel.errors import DomainError, NotFound
from rollouts import selectors
from rollouts.api.serializers import (
    ApplicationSlotDetailSerializer,
    RolloutDetailSerializer,
)
from rollouts.models import Rollout, Slot

NUMBER = OpenApiParameter(
    "number", str, OpenApiParameter.PATH, description="RO-<number>, or the number alone"
)
SLUG = OpenApiParameter("slug", str, OpenApiParameter.PATH, description="The application's slug")
NAME = OpenApiParameter("name", str, OpenApiParameter.PATH, description="The slot's name")
OVERRIDE_TENANT = OpenApiParameter(
    "tenant", str, OpenApiParameter.PATH, description="The tenant whose override it is"
)
ACTIONS = ("start", "advance", "pause", "resume", "abort", "rollback", "flag")


def actor(request: Request) -> User:
    return cast(User, request.user)


@contextmanager
def field_renamed(field: str) -> Iterator[None]:
    """A lookup's refusal names the body's field (``change``, ``artifact``, ``version``)."""
    try:
        yield
    except DomainError as exc:
        raise type(exc)(exc.message, field=field, code=exc.code) from exc


def slot_for(user: Any, slug: str, name: str) -> Slot:
    application = selectors.application_by_slug(user, slug)
    found = (
        Slot.objects.select_related(
            "application__tenant",
            "created_by",
            "artifact__artifact_class",
            "artifact__tenant",
            "artifact__active_version__artifact__artifact_class",
            "artifact__active_version__artifact__tenant",
        )
        .filter(application=application, name=name)
        .first()
    )
    if found is None:
        raise NotFound(f"No slot '{name}' in {application.slug}.", field="name")
    return found


def slot_detail(slot: Slot, user: Any, code: int = status.HTTP_200_OK) -> Response:
    fresh = slot_for(user, slot.application.slug, slot.name)
    tenants = set(tenants_visible_to(user).values_list("pk", flat=True))
    platform = selectors.platform_tenant()
    if platform is not None:  # the platform's pointers reach everyone
        tenants.add(platform.pk)
    context = {"user": user, "tenants": tenants}
    return Response(ApplicationSlotDetailSerializer(fresh, context=context).data, status=code)


def rollout_detail(rollout: Rollout, user: Any, code: int = status.HTTP_200_OK) -> Response:
    """The rollout as it stands after a service call (re-read: services work on a locked copy)."""
    fresh = selectors.rollout_by_number(user, rollout.number)
    return Response(RolloutDetailSerializer(fresh, context={"user": user}).data, status=code)
