"""REST endpoints for the caller, their tenants, role grants, personal and service tokens,
and passkeys. Thin: services decide."""

from __future__ import annotations

import json
from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
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
    PasskeyRegisterSerializer,
    PasskeyRevokeSerializer,
    PasskeySerializer,
    RoleGrantInputSerializer,
    RoleGrantSerializer,
    RoleRevokeInputSerializer,
    ServiceTokenCreatedSerializer,
    ServiceTokenCreateSerializer,
    ServiceTokenRevokeSerializer,
    ServiceTokenSerializer,
    TenantAccessSerializer,
    TenantDetailSerializer,
    WebAuthnChallengeSerializer,
)
from accounts.authentication import user_of
from accounts.models import ApiToken, Passkey, PasskeyChallenge, RoleGrant, ServiceToken, Tenant
from accounts.passkeys import relying_party
from governance.kernel import reauth
from governance.kernel.errors import Forbidden, fields_renamed
from governance.kernel.serializers import ApiErrorSerializer


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


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ApiErrorSerializer, description=description)


def webauthn_challenge(row: PasskeyChallenge, options_json: str) -> dict[str, Any]:
    """A challenge as the API answers it: its id, expiry, relying party and the options."""
    return {
        "challenge_id": row.pk,
        "expires_at": row.expires_at,
        "rp_id": row.rp_id,
        "origin": row.origin,
        "options": json.loads(options_json),
    }


REGISTRATION_FLOW = """Registering a passkey is a WebAuthn ceremony in two calls:

1. `POST /api/v1/passkeys/registration-options/` (no body) answers `challenge_id` and
   `options`, the PublicKeyCredentialCreationOptions JSON (binary fields base64url).
2. Hand `options` to the authenticator (in a browser:
   `navigator.credentials.create({publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options)})`),
   then `POST /api/v1/passkeys/` with `challenge_id`, `credential` (the result's `toJSON()`),
   an optional `name` and your `password`. The answer (201) is the passkey; its public key is
   recorded in the `passkey.registered` event.

A challenge answers once and expires after WEBAUTHN_CHALLENGE_SECONDS. The authenticator's
client data must name the `origin` and the key be scoped to the `rp_id` the first call gave."""


class PasskeyViewSet(viewsets.GenericViewSet[Passkey]):
    """Passkeys (WebAuthn credentials) to sign off changes with: your own; a platform
    administrator reads and revokes anyone's. Another person's passkey answers 404."""

    serializer_class = PasskeySerializer
    queryset = Passkey.objects.none()
    lookup_value_regex = "[^/]+"  # a malformed id reaches the view and gets a JSON 404 on "id"

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Passkey.objects.none()
        return selectors.passkeys_visible_to(self.request.user)

    def _passkey(self, pk: str) -> Passkey:
        return selectors.passkey_visible_to(self.request.user, pk)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "user",
                str,
                description="A username: that person's passkeys (platform administrators; "
                "anyone may name themselves).",
            )
        ],
        responses=PasskeySerializer(many=True),
        description="Your passkeys, active and revoked, newest first; a platform administrator "
        "lists another person's with ?user=USERNAME.",
    )
    def list(self, request: Request) -> Response:
        username = request.query_params.get("user") or request.user.get_username()
        if username != request.user.get_username() and not selectors.is_platform_admin(
            request.user
        ):
            raise Forbidden(
                "Only a platform administrator lists another person's passkeys.", field="user"
            )
        page = self.paginate_queryset(selectors.passkeys_of(selectors.user_by_username(username)))
        return self.get_paginated_response(PasskeySerializer(page, many=True).data)

    @extend_schema(responses=PasskeySerializer)
    def retrieve(self, request: Request, pk: str) -> Response:  # noqa: ARG002 - DRF passes it
        return Response(PasskeySerializer(self._passkey(pk)).data)

    @extend_schema(
        request=None,
        responses={
            200: WebAuthnChallengeSerializer,
            400: _error("The request's origin is not one of WEBAUTHN_ORIGINS (field origin)."),
            409: _error("You already hold the most passkeys a person may (20)."),
        },
        description=REGISTRATION_FLOW,
    )
    @action(detail=False, methods=["post"], url_path="registration-options")
    def registration_options(self, request: Request) -> Response:
        """Step 1 of registering a passkey: the challenge and the creation options."""
        row, options = services.passkey_registration_begin(
            user=user_of(request), party=relying_party(request)
        )
        return Response(WebAuthnChallengeSerializer(webauthn_challenge(row, options)).data)

    @extend_schema(
        request=PasskeyRegisterSerializer,
        responses={
            201: PasskeySerializer,
            400: _error(
                "Bad input, named: challenge_id not a UUID; credential not a WebAuthn "
                "registration (or not for this challenge, origin or relying party); name."
            ),
            403: _error("No password, or a wrong one (password_required, field password)."),
            404: _error("No such registration challenge of yours (field challenge_id)."),
            409: _error(
                "The challenge was answered already or expired (challenge_id); the key is "
                "registered already (credential)."
            ),
        },
        description=REGISTRATION_FLOW,
    )
    def create(self, request: Request) -> Response:
        """Step 2 of registering a passkey: the authenticator's answer to the challenge."""
        body = PasskeyRegisterSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        reauth.require_password_api(request, data["password"], act="Registering a passkey")
        with fields_renamed({"challenge": "challenge_id"}):
            passkey = services.passkey_register(
                user=user_of(request),
                challenge_id=data["challenge_id"],
                credential=data["credential"],
                name=data["name"],
            )
        return Response(PasskeySerializer(passkey).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=PasskeyRevokeSerializer,
        responses={
            200: PasskeySerializer,
            400: _error("No reason, or a reason over 500 characters (field reason)."),
            403: _error("No password, or a wrong one (password_required, field password)."),
            404: _error("Not a passkey you may see (field id)."),
        },
        description="Revoke a passkey (its owner, or a platform administrator, with their own "
        "password): it signs nothing more, and the approvals it signed stop counting (each change's "
        "`not_counting` says so). Logged as passkey.revoked; revoking twice changes nothing.",
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str) -> Response:
        passkey = self._passkey(pk)
        body = PasskeyRevokeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        reauth.require_password_api(
            request, body.validated_data["password"], act="Revoking a passkey"
        )
        passkey = services.passkey_revoke(
            passkey=passkey, actor=user_of(request), reason=body.validated_data["reason"]
        )
        return Response(PasskeySerializer(passkey).data)
