"""Management endpoints of applications, their slots and tenants' overrides."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import tenant_for_user
from governance.kernel.errors import DomainError, NotFound
from registry import selectors as registry_selectors
from registry.models import Artifact, Version
from rollouts import selectors, services
from rollouts.api.serializers import (
    ApplicationCreateSerializer,
    ApplicationSerializer,
    ApplicationSlotDetailSerializer,
    ApplicationSlotSerializer,
    ApplicationUpdateSerializer,
    OverrideSerializer,
    OverrideSetSerializer,
    ReasonSerializer,
    SlotCreateSerializer,
    SlotUpdateSerializer,
)
from rollouts.api.views.common import (
    NAME,
    OVERRIDE_TENANT,
    SLUG,
    actor,
    field_renamed,
    slot_detail,
    slot_for,
)
from rollouts.models import Override, Slot


def _artifact(text: str, user: Any) -> Artifact:
    """The artifact a slot binds: one of a tenant the caller sees, or a shared platform one."""
    with field_renamed("artifact"):
        ref = registry_selectors.parse(text)
        if ref.class_slug is None or ref.tenant is None or ref.version is not None:
            raise DomainError(f"Name the artifact as class/tenant/slug, not '{text}'.")
        if ref.tenant == settings.PLATFORM_TENANT_SLUG:  # shared with every tenant
            return registry_selectors.artifact_by_path_unscoped(
                ref.class_slug, ref.tenant, ref.slug
            )
        return registry_selectors.artifact_by_path(
            ref.class_slug, ref.tenant, ref.slug, visible_to=user
        )


def _override_version(slot: Slot, text: str) -> Version:
    """A version of the slot's artifact (which the caller sees through the slot): its number
    (``1.2.0``) or any full reference. Anything else reads as missing, whatever it names."""
    missing = NotFound(f"No version '{text}' of {slot.artifact.path}.", field="version")
    ref = text if "/" in text else f"{slot.artifact.path}/{text}"
    try:
        version = registry_selectors.version_by_reference_unscoped(ref)
    except DomainError:
        raise missing from None
    if version.artifact_id != slot.artifact_id:
        raise missing
    return version


class ApplicationList(APIView):
    """Applications you may read: your tenants' and the platform's (shared)."""

    @extend_schema(responses=ApplicationSerializer(many=True))
    def get(self, request: Request) -> Response:
        rows = selectors.applications_visible_to(request.user).select_related(
            "tenant", "created_by"
        )
        return Response(ApplicationSerializer(rows, many=True).data)

    @extend_schema(request=ApplicationCreateSerializer, responses={201: ApplicationSerializer})
    def post(self, request: Request) -> Response:
        """Declare an application of a tenant (its administrators)."""
        body = ApplicationCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        made = services.application_create(
            tenant=tenant_for_user(request.user, data["tenant"]),
            slug=data["slug"],
            name=data["name"],
            description=data["description"],
            actor=actor(request),
        )
        fresh = selectors.application_by_slug(request.user, made.slug)
        return Response(ApplicationSerializer(fresh).data, status=status.HTTP_201_CREATED)


class ApplicationDetail(APIView):
    """One application and its slots."""

    @extend_schema(parameters=[SLUG], responses=ApplicationSerializer)
    def get(self, request: Request, slug: str) -> Response:
        return Response(
            ApplicationSerializer(selectors.application_by_slug(request.user, slug)).data
        )

    @extend_schema(
        parameters=[SLUG], request=ApplicationUpdateSerializer, responses=ApplicationSerializer
    )
    def patch(self, request: Request, slug: str) -> Response:
        application = selectors.application_by_slug(request.user, slug)
        body = ApplicationUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.application_update(
            application=application,
            name=body.validated_data.get("name"),
            description=body.validated_data.get("description"),
            actor=actor(request),
        )
        return Response(
            ApplicationSerializer(selectors.application_by_slug(request.user, slug)).data
        )


class SlotList(APIView):
    """The slots of an application, each with its default version."""

    @extend_schema(parameters=[SLUG], responses=ApplicationSlotSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        application = selectors.application_by_slug(request.user, slug)
        rows = application.slots.select_related(
            "application",
            "created_by",
            "artifact__artifact_class",
            "artifact__tenant",
            "artifact__active_version__artifact__artifact_class",
            "artifact__active_version__artifact__tenant",
        )
        return Response(ApplicationSlotSerializer(rows, many=True).data)

    @extend_schema(
        parameters=[SLUG],
        request=SlotCreateSerializer,
        responses={201: ApplicationSlotDetailSerializer},
    )
    def post(self, request: Request, slug: str) -> Response:
        """Declare a slot bound to an artifact that has an active version (administrators)."""
        application = selectors.application_by_slug(request.user, slug)
        body = SlotCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        slot = services.slot_create(
            application=application,
            name=data["name"],
            artifact=_artifact(data["artifact"], request.user),
            description=data["description"],
            actor=actor(request),
        )
        return slot_detail(slot, request.user, status.HTTP_201_CREATED)


class SlotDetail(APIView):
    """A slot: its default, the overrides you may see, rollouts moving it, and its history."""

    @extend_schema(parameters=[SLUG, NAME], responses=ApplicationSlotDetailSerializer)
    def get(self, request: Request, slug: str, name: str) -> Response:
        return slot_detail(slot_for(request.user, slug, name), request.user)

    @extend_schema(
        parameters=[SLUG, NAME],
        request=SlotUpdateSerializer,
        responses=ApplicationSlotDetailSerializer,
    )
    def patch(self, request: Request, slug: str, name: str) -> Response:
        slot = slot_for(request.user, slug, name)
        body = SlotUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.slot_update(
            slot=slot, description=body.validated_data["description"], actor=actor(request)
        )
        return slot_detail(slot, request.user)


class OverrideDetail(APIView):
    """A tenant's own pointer for a slot: set it (PUT) or clear it (DELETE), saying why."""

    @extend_schema(parameters=[SLUG, NAME, OVERRIDE_TENANT], responses=OverrideSerializer)
    def get(self, request: Request, slug: str, name: str, tenant: str) -> Response:
        slot = slot_for(request.user, slug, name)
        found = tenant_for_user(request.user, tenant)
        row = Override.objects.filter(slot=slot, tenant=found).first()
        if row is None:
            raise NotFound(f"{found.slug} has no override of {slot}.", field="tenant")
        return Response(OverrideSerializer(row).data)

    @extend_schema(
        parameters=[SLUG, NAME, OVERRIDE_TENANT],
        request=OverrideSetSerializer,
        responses=OverrideSerializer,
    )
    def put(self, request: Request, slug: str, name: str, tenant: str) -> Response:
        slot = slot_for(request.user, slug, name)
        found = tenant_for_user(request.user, tenant)
        body = OverrideSetSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        row = services.override_set(
            slot=slot,
            tenant=found,
            version=_override_version(slot, body.validated_data["version"]),
            reason=body.validated_data["reason"],
            actor=actor(request),
        )
        return Response(OverrideSerializer(row).data)

    @extend_schema(
        parameters=[SLUG, NAME, OVERRIDE_TENANT], request=ReasonSerializer, responses={204: None}
    )
    def delete(self, request: Request, slug: str, name: str, tenant: str) -> Response:
        """Clear it: the tenant gets the default again. The reason may come as ``?reason=``."""
        slot = slot_for(request.user, slug, name)
        found = tenant_for_user(request.user, tenant)
        data = request.data if request.data else request.query_params
        body = ReasonSerializer(data={"reason": data.get("reason", "")})
        body.is_valid(raise_exception=True)
        services.override_clear(
            slot=slot, tenant=found, reason=body.validated_data["reason"], actor=actor(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
