"""API shapes for tenants, roles and tokens."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework import serializers

from accounts.choices import Role, TokenScope
from accounts.models import (
    ApiToken,
    Membership,
    Passkey,
    RoleGrant,
    ServiceToken,
    Tenant,
    User,
)


class TenantSerializer(serializers.ModelSerializer[Tenant]):
    class Meta:
        model = Tenant
        fields = ["id", "slug", "name", "created_at"]


class TenantAccessSerializer(serializers.Serializer[Any]):
    tenant = TenantSerializer()
    roles = serializers.ListField(child=serializers.ChoiceField(choices=Role.choices))
    member = serializers.BooleanField()


class MeSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    username = serializers.CharField()
    email = serializers.EmailField()
    platform_administrator = serializers.BooleanField()
    auth = serializers.CharField(help_text="'token' or 'session'")
    tenants = TenantAccessSerializer(many=True)


class RoleGrantSerializer(serializers.ModelSerializer[RoleGrant]):
    username = serializers.CharField(source="user.username", read_only=True)
    tenant: serializers.SlugRelatedField[Tenant] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    granted_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    revoked_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = RoleGrant
        fields = [
            "id",
            "username",
            "tenant",
            "role",
            "reason",
            "granted_at",
            "granted_by",
            "revoked_at",
            "revoked_by",
            "revoke_reason",
        ]


class RoleGrantInputSerializer(serializers.Serializer[Any]):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class RoleRevokeInputSerializer(serializers.Serializer[Any]):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)
    reason = serializers.CharField(
        max_length=500, help_text="Why the role is taken away; recorded and shown in the history."
    )


class MemberSerializer(serializers.ModelSerializer[Membership]):
    username = serializers.CharField(source="user.username")
    roles = serializers.SerializerMethodField()

    class Meta:
        model = Membership
        fields = ["username", "added_at", "roles"]

    def get_roles(self, obj: Membership) -> list[str]:
        return sorted(g.role for g in getattr(obj.user, "active_grants_here", []))


class TenantDetailSerializer(TenantSerializer):
    members = MemberSerializer(many=True, source="active_members")

    class Meta(TenantSerializer.Meta):
        fields = [*TenantSerializer.Meta.fields, "members"]


class ApiTokenSerializer(serializers.ModelSerializer[ApiToken]):
    state = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "state",
        ]

    def get_state(self, obj: ApiToken) -> str:
        return obj.state()


class ApiTokenCreateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100)
    expires_days = serializers.IntegerField(
        min_value=1, max_value=settings.API_TOKEN_MAX_EXPIRY_DAYS, required=False
    )


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(help_text="Shown once; store it now.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]


class ServiceTokenSerializer(serializers.ModelSerializer[ServiceToken]):
    tenant: serializers.SlugRelatedField[Tenant] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=TokenScope.choices))
    created_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    revoked_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    state = serializers.SerializerMethodField(help_text="active, expired or revoked")

    class Meta:
        model = ServiceToken
        fields = [
            "id",
            "tenant",
            "name",
            "prefix",
            "scopes",
            "created_at",
            "created_by",
            "expires_at",
            "revoked_at",
            "revoked_by",
            "revoke_reason",
            "state",
        ]

    def get_state(self, obj: ServiceToken) -> str:
        return obj.state()


class ServiceTokenCreateSerializer(serializers.Serializer[Any]):
    tenant = serializers.SlugField(max_length=63, help_text="The tenant whose machine uses it.")
    name = serializers.CharField(max_length=100, help_text="What will use it, e.g. 'sales-agent'.")
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=TokenScope.choices), allow_empty=False
    )
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, default=None, help_text="Omit to keep it until revoked."
    )


class ServiceTokenCreatedSerializer(ServiceTokenSerializer):
    token = serializers.CharField(help_text="Shown once; store it now.")

    class Meta(ServiceTokenSerializer.Meta):
        fields = [*ServiceTokenSerializer.Meta.fields, "token"]


class ServiceTokenRevokeSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(
        max_length=500, help_text="Why it is revoked; recorded in the log and shown on the tenant."
    )


# --- passkeys -------------------------------------------------------------------------------


class PasskeySerializer(serializers.ModelSerializer[Passkey]):
    """A registered passkey (a WebAuthn credential): its public key, never anything secret."""

    username = serializers.CharField(source="user.username", read_only=True)
    revoked_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    state = serializers.SerializerMethodField(help_text="active or revoked")

    class Meta:
        model = Passkey
        fields = [
            "id",
            "username",
            "name",
            "credential_id",
            "algorithm",
            "public_key_spki",
            "aaguid",
            "transports",
            "backed_up",
            "rp_id",
            "sign_count",
            "created_at",
            "last_used_at",
            "state",
            "revoked_at",
            "revoked_by",
            "revoke_reason",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "credential_id": {"help_text": "The WebAuthn credential id (base64url)."},
            "public_key_spki": {
                "help_text": "SubjectPublicKeyInfo (DER), base64url: what the offline verifier "
                "checks passkey sign-offs against (also in the passkey.registered event)."
            },
        }

    def get_state(self, obj: Passkey) -> str:
        return "active" if obj.revoked_at is None else "revoked"


class WebAuthnChallengeSerializer(serializers.Serializer[Any]):
    """A WebAuthn challenge the server issued, with the options to hand the authenticator."""

    challenge_id = serializers.UUIDField(help_text="Send it back with the authenticator's answer.")
    expires_at = serializers.DateTimeField(
        help_text="Answer before this (WEBAUTHN_CHALLENGE_SECONDS)."
    )
    rp_id = serializers.CharField(help_text="The relying party id the authenticator must use.")
    origin = serializers.CharField(
        help_text="The origin the answer's clientDataJSON must name (this request's origin)."
    )
    options = serializers.DictField(
        help_text="The WebAuthn options JSON (binary fields base64url), for "
        "PublicKeyCredential.parseCreationOptionsFromJSON / parseRequestOptionsFromJSON."
    )


def credential_json(value: Any) -> dict[str, Any]:
    """The credential JSON a browser's ``PublicKeyCredential.toJSON()`` gives, as an object (or
    its text); anything else is a 400 on the field."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise serializers.ValidationError(
                "Send the WebAuthn credential JSON (PublicKeyCredential.toJSON())."
            ) from None
    if not isinstance(value, dict):
        raise serializers.ValidationError(
            "Send the WebAuthn credential JSON (PublicKeyCredential.toJSON()) as an object."
        )
    return value


class PasskeyRegisterSerializer(serializers.Serializer[Any]):
    challenge_id = serializers.UUIDField(
        help_text="From POST /api/v1/passkeys/registration-options/."
    )
    credential = serializers.JSONField(
        help_text="What navigator.credentials.create() returned, as JSON "
        "(PublicKeyCredential.toJSON(): id, rawId, type, response.clientDataJSON, "
        "response.attestationObject, base64url)."
    )
    name = serializers.CharField(
        max_length=100,
        required=False,
        allow_blank=True,
        default="",
        help_text='What you call it ("Work laptop"); "Passkey" when left out.',
    )
    password = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        write_only=True,
        style={"input_type": "password"},
        help_text="Your current password: a passkey signs off in place of it, so registering "
        "one is as deliberate. Not needed on a browser session that confirmed it within "
        "REVIEWS_REAUTH_SECONDS.",
    )

    def validate_credential(self, value: Any) -> dict[str, Any]:
        return credential_json(value)


class PasskeyRevokeSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(
        max_length=500,
        help_text="Why it is revoked (lost device, ...); recorded in the passkey.revoked event.",
    )
    password = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        write_only=True,
        style={"input_type": "password"},
        help_text="Your current password (revoking is deliberate, as on the account page). Not "
        "needed on a browser session that confirmed it within REVIEWS_REAUTH_SECONDS.",
    )
