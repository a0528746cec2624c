"""REST endpoints for the caller, their tenants, role grants, personal and service tokens.
Thin: services decide."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.api.serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenCreateSerializer,
    ApiTokenSerializer,
    MeSerializer,
    RoleGrantInputSerializer,
    RoleGrantSerializer,
    RoleRevokeInputSerializer,
    ServiceTokenCreatedSerializer,
    ServiceTokenCreateSerializer,
    ServiceTokenRevokeSerializer,
    ServiceTokenSerializer,
    TenantAccessSerializer,
    TenantDetailSerializer,
)
from accounts.authentication import user_of
from accounts.models import ApiToken, RoleGrant, ServiceToken, Tenant


class MeView(APIView):
    """Who the caller is, how they authenticated, and their roles per tenant."""

    @extend_schema(responses=MeSerializer)
    def get(self, request: Request) -> Response:
        user = request.user
        data = {
            "id": user.pk,
            "username": user.get_username(),
            "email": getattr(user, "email", ""),
            "platform_administrator": selectors.is_platform_admin(user),
            "auth": "token" if isinstance(request.auth, ApiToken) else "session",
            "tenants": selectors.access_by_tenant(user),
        }
        return Response(MeSerializer(data).data)


class TenantViewSet(viewsets.GenericViewSet[Any]):  # it pages tenants and grants
    """Tenants the caller belongs to. Others answer 404, as if they did not exist."""

    lookup_field = "slug"
    lookup_value_regex = "[a-z0-9-]+"
    serializer_class = TenantDetailSerializer
    queryset = Tenant.objects.none()

    @extend_schema(responses=TenantAccessSerializer(many=True))
    def list(self, request: Request) -> Response:
        return Response(
            TenantAccessSerializer(selectors.access_by_tenant(request.user), many=True).data
        )

    def retrieve(self, request: Request, slug: str) -> Response:
        tenant: Any = selectors.tenant_for_user(request.user, slug)
        tenant.active_members = selectors.active_members(tenant)
        return Response(TenantDetailSerializer(tenant).data)

    @extend_schema(methods=["GET"], responses=RoleGrantSerializer(many=True))
    @extend_schema(
        methods=["POST"], request=RoleGrantInputSerializer, responses=RoleGrantSerializer
    )
    @action(detail=True, methods=["get", "post"])
    def grants(self, request: Request, slug: str) -> Response:
        """GET: active grants (any member). POST: grant a role (tenant administrators)."""
        tenant = selectors.tenant_for_user(request.user, slug)
        if request.method == "GET":
            grants = selectors.grant_history(tenant)
            if request.query_params.get("history") not in {"1", "true"}:
                grants = grants.filter(revoked_at__isnull=True)
            page = self.paginate_queryset(grants)
            return self.get_paginated_response(RoleGrantSerializer(page, many=True).data)
        body = RoleGrantInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        grant, created = services.role_grant(
            user=body.validated_data["username"],
            role=body.validated_data["role"],
            tenant=tenant,
            actor=user_of(request),
            reason=body.validated_data["reason"],
        )
        return Response(
            RoleGrantSerializer(grant).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(request=RoleRevokeInputSerializer, responses=RoleGrantSerializer)
    @action(detail=True, methods=["post"], url_path="grants/revoke")
    def revoke_grant(self, request: Request, slug: str) -> Response:
        """Revoke a role, saying why; it stops working on the next request."""
        tenant = selectors.tenant_for_user(request.user, slug)
        body = RoleRevokeInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        grant: RoleGrant = services.role_revoke(
            user=body.validated_data["username"],
            role=body.validated_data["role"],
            tenant=tenant,
            actor=user_of(request),
            reason=body.validated_data["reason"],
        )
        return Response(RoleGrantSerializer(grant).data)


class TokenViewSet(mixins.ListModelMixin, viewsets.GenericViewSet[ApiToken]):
    """The caller's personal API tokens."""

    serializer_class = ApiTokenSerializer

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return ApiToken.objects.none()
        return selectors.tokens_of(user_of(self.request))

    @extend_schema(request=ApiTokenCreateSerializer, responses={201: ApiTokenCreatedSerializer})
    def create(self, request: Request) -> Response:
        body = ApiTokenCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        token, raw = services.token_create(
            user=user_of(request),
            name=body.validated_data["name"],
            expires_days=body.validated_data.get("expires_days"),
            actor=user_of(request),
        )
        token.token = raw  # type: ignore[attr-defined]
        return Response(ApiTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=ApiTokenSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str) -> Response:  # noqa: ARG002 - DRF passes pk by name
        token = self.get_object()
        token = services.token_revoke(token=token, actor=user_of(request))
        return Response(ApiTokenSerializer(token).data)


class ServiceTokenViewSet(mixins.ListModelMixin, viewsets.GenericViewSet[ServiceToken]):
    """Service tokens of the tenants the caller administers (machines that read the runtime
    configuration or send telemetry). The token itself is shown once, in the answer to POST."""

    serializer_class = ServiceTokenSerializer

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return ServiceToken.objects.none()
        if self.action == "list":
            tokens = selectors.service_tokens_administered_by(self.request.user)
            tenant = self.request.query_params.get("tenant")
            return tokens.filter(tenant__slug=tenant) if tenant else tokens
        # Another tenant's token is a 404; a member who does not administer gets the 403.
        return selectors.service_tokens_visible_to(self.request.user)

    @extend_schema(
        parameters=[OpenApiParameter("tenant", str, description="Only this tenant's tokens.")]
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=ServiceTokenCreateSerializer, responses={201: ServiceTokenCreatedSerializer}
    )
    def create(self, request: Request) -> Response:
        body = ServiceTokenCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        tenant = selectors.tenant_for_user(request.user, body.validated_data["tenant"])
        token, raw = services.service_token_create(
            tenant=tenant,
            name=body.validated_data["name"],
            scopes=body.validated_data["scopes"],
            expires_at=body.validated_data["expires_at"],
            actor=user_of(request),
        )
        token.token = raw  # type: ignore[attr-defined]
        return Response(ServiceTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ServiceTokenRevokeSerializer, responses=ServiceTokenSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str) -> Response:  # noqa: ARG002 - DRF passes pk by name
        """Revoke it, saying why: every server refuses it within seconds."""
        token = self.get_object()
        body = ServiceTokenRevokeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        token = services.service_token_revoke(
            token=token,
            actor=user_of(request),
            reason=body.validated_data["reason"],
        )
        return Response(ServiceTokenSerializer(token).data)
