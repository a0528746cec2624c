"""REST endpoints of waivers. Thin: selectors read, services write."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, cast

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Tenant, User
from accounts.selectors import tenant_for_user
from governance.kernel.errors import DomainError, NotFound
from registry import selectors as registry_selectors
from registry.models import Artifact
from reviews.selectors import change_by_reference
from reviews.waivers import selectors
from reviews.waivers.api.serializers import (
    WaiverDetailSerializer,
    WaiverGrantSerializer,
    WaiverRenewSerializer,
    WaiverRevokeSerializer,
    WaiverSerializer,
)
from reviews.waivers.filters import WaiverQuerySerializer
from reviews.waivers.models import Waiver
from reviews.waivers.selectors import WaiverQuery, waivers_matching
from reviews.waivers.services import waiver_countersign, waiver_grant, waiver_renew, waiver_revoke

WAIVER_REFERENCE = OpenApiParameter(
    "reference", str, OpenApiParameter.PATH, description="WV-YYYY-NNNN, or the waiver's UUID"
)


def _named(field: str, lookup: Callable[[], Any]) -> Any:
    """Run a lookup from the body, so that its failure names the body's ``field`` (as a 400)."""
    try:
        return lookup()
    except DomainError as exc:
        raise DomainError(exc.message, field=field) from exc


def _waiver_owner(username: str, tenant: Tenant) -> User:
    owner = User.objects.filter(username=username).first()
    if owner is None:  # worded as the service words a non-member: no probing for usernames
        raise DomainError(f"{username} is not an active member of {tenant.slug}.", field="owner")
    return owner


def _waiver_artifact(text: str, user: Any) -> Artifact:
    ref = registry_selectors.parse(text)
    if ref.class_slug is None or ref.tenant is None or ref.version is not None:
        raise DomainError(f"Name each artifact as class/tenant/slug, not '{text}'.")
    return registry_selectors.artifact_by_path(
        ref.class_slug, ref.tenant, ref.slug, visible_to=user
    )


class WaiverViewSet(viewsets.GenericViewSet[Waiver]):
    """Waivers of your tenants: list by state (expiring soon first), grant, renew, revoke, countersign.

    A waiver's terms never change: renewing makes a new waiver linked to the old one.
    Another tenant's waiver answers 404, as if it did not exist.
    """

    lookup_field = "reference"
    lookup_value_regex = "[^/]+"
    serializer_class = WaiverSerializer
    filter_backends: list[Any] = []
    queryset = Waiver.objects.none()

    def get_queryset(self) -> QuerySet[Waiver]:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Waiver.objects.none()
        return selectors.waivers_visible_to(self.request.user).select_related("renewal")

    def _waiver(self, reference: str) -> Waiver:
        return selectors.waiver_by_reference(reference, visible_to=self.request.user)

    def _answer(self, waiver: Waiver, code: int = status.HTTP_200_OK) -> Response:
        """The waiver as it stands after a service call (re-read: services work on a locked copy)."""
        fresh = self.get_queryset().get(pk=waiver.pk)
        context = {"now": timezone.now(), "user": self.request.user}
        return Response(WaiverDetailSerializer(fresh, context=context).data, code)

    @extend_schema(parameters=[WaiverQuerySerializer], responses=WaiverSerializer(many=True))
    def list(self, request: Request) -> Response:
        # An empty parameter (a form's "any") filters nothing, as in the other lists.
        params = {k: v for k, v in request.query_params.items() if v != ""}
        query = WaiverQuerySerializer(data=params)
        query.is_valid(raise_exception=True)
        now = timezone.now()
        rows = waivers_matching(self.get_queryset(), now, WaiverQuery(**query.validated_data))
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(
            WaiverSerializer(page, many=True, context={"now": now}).data
        )

    @extend_schema(request=WaiverGrantSerializer, responses={201: WaiverDetailSerializer})
    def create(self, request: Request) -> Response:
        """Grant a waiver (administrators; a security check also needs a security officer's countersignature)."""
        body = WaiverGrantSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        user = request.user
        tenant = tenant_for_user(user, data["tenant"])
        change = (
            _named("change", lambda: change_by_reference(data["change"], visible_to=user))
            if data["change"]
            else None
        )
        artifacts = [
            _named("artifacts", partial(_waiver_artifact, t, user)) for t in data["artifacts"]
        ]
        try:
            waiver = waiver_grant(
                tenant=tenant,
                actor=cast(User, user),
                check_kind=data["check"],
                metric=data["metric"],
                change=change,
                artifacts=artifacts,
                owner=_waiver_owner(data["owner"], tenant),
                justification=data["justification"],
                mitigation=data["mitigation"],
                advisory_links=data["advisory_links"],
                expires_at=data["expires_at"],
            )
        except DomainError as exc:
            if exc.field == "check_kind":  # the service's name for this body's "check"
                exc.field = "check"
            raise
        return self._answer(waiver, status.HTTP_201_CREATED)

    @extend_schema(parameters=[WAIVER_REFERENCE], responses=WaiverDetailSerializer)
    def retrieve(self, request: Request, reference: str) -> Response:
        waiver = self._waiver(reference)
        context = {"now": timezone.now(), "user": request.user}
        return Response(WaiverDetailSerializer(waiver, context=context).data)

    @extend_schema(
        parameters=[WAIVER_REFERENCE],
        request=WaiverRenewSerializer,
        responses={201: WaiverDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def renew(self, request: Request, reference: str) -> Response:
        """Renew: a new waiver with the same scope, linked to this one (the answer is the new one)."""
        waiver = self._waiver(reference)
        body = WaiverRenewSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        renewal = waiver_renew(
            waiver=waiver,
            actor=cast(User, request.user),
            expires_at=data["expires_at"],
            justification=data.get("justification"),
            mitigation=data.get("mitigation"),
            advisory_links=data.get("advisory_links"),
        )
        return self._answer(renewal, status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[WAIVER_REFERENCE],
        request=WaiverRevokeSerializer,
        responses=WaiverDetailSerializer,
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, reference: str) -> Response:
        """End a waiver now (administrators and security officers); what it covered blocks again."""
        waiver = self._waiver(reference)
        body = WaiverRevokeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        waiver = waiver_revoke(
            waiver=waiver, actor=cast(User, request.user), reason=body.validated_data["reason"]
        )
        return self._answer(waiver)

    @extend_schema(parameters=[WAIVER_REFERENCE], request=None, responses=WaiverDetailSerializer)
    @action(detail=True, methods=["post"])
    def countersign(self, request: Request, reference: str) -> Response:
        """A security officer's agreement to a waiver of a security check; until then it does not count."""
        waiver = waiver_countersign(waiver=self._waiver(reference), actor=cast(User, request.user))
        return self._answer(waiver)


@extend_schema(exclude=True)
class UnknownWaiverAction(APIView):
    """Any other ``waivers/{reference}/{action}/``: a JSON 404 naming the action."""

    def _refuse(self, _request: Request, *, action: str, **_kwargs: str) -> Response:
        raise NotFound(
            f"No action '{action}' on waivers; use renew, revoke or countersign.", field="action"
        )

    get = post = put = patch = delete = _refuse
