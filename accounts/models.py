"""Users, tenants, memberships, role grants and API tokens.

Grants and memberships are never edited in place: revoking one stamps
``revoked_at``/``revoked_by`` on it and a later grant is a new row, so the
tables themselves are the history of who held what, when, and who decided.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.contrib.auth.models import AbstractUser
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from accounts.choices import PLATFORM_ROLES, Role
from governance.kernel.triggers import undeletable

TENANT_SLUG_RE = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
tenant_slug_validator = RegexValidator(
    TENANT_SLUG_RE,
    "Use 1-63 lowercase letters, digits or hyphens, starting and ending with a letter or digit.",
)


class User(AbstractUser):
    """A person (or the operator of a machine) who signs in; roles come from RoleGrant."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)

    class Meta:
        ordering = ["username"]
        swappable = "AUTH_USER_MODEL"

    def __str__(self) -> str:
        return self.username


class Tenant(models.Model):
    """An organisation or business unit (``acme``) that owns artifacts. Its slug never changes."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.CharField(max_length=63, unique=True, validators=[tenant_slug_validator])
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    def get_absolute_url(self) -> str:
        return reverse("tenant-detail", kwargs={"slug": self.slug})


class Membership(models.Model):
    """A user's membership of a tenant: members may author; roles add powers on top."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="memberships")
    added_at = models.DateTimeField(default=timezone.now)
    added_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    removed_at = models.DateTimeField(null=True, blank=True)
    removed_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["tenant__slug", "user__username", "-added_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "user"],
                condition=Q(removed_at__isnull=True),
                name="membership_one_active_per_user_tenant",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant}"

    @property
    def is_active(self) -> bool:
        return self.removed_at is None


class RoleGrant(models.Model):
    """A role held by a user in one tenant, or platform-wide (tenant empty, administrator only)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="role_grants")
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.PROTECT, related_name="role_grants"
    )
    role = models.CharField(max_length=32, choices=Role.choices)
    reason = models.CharField(max_length=500, blank=True)
    granted_at = models.DateTimeField(default=timezone.now)
    granted_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revoke_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-granted_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "tenant", "role"],
                condition=Q(revoked_at__isnull=True, tenant__isnull=False),
                name="rolegrant_one_active_per_user_tenant_role",
            ),
            models.UniqueConstraint(
                fields=["user", "role"],
                condition=Q(revoked_at__isnull=True, tenant__isnull=True),
                name="rolegrant_one_active_platform_role",
            ),
            models.CheckConstraint(
                condition=Q(tenant__isnull=False) | Q(role__in=sorted(PLATFORM_ROLES)),
                name="rolegrant_platform_only_administrator",
            ),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="rolegrant_role_known"),
        ]
        indexes = [models.Index(fields=["user", "revoked_at"], name="rolegrant_user_active")]

    def __str__(self) -> str:
        scope = self.tenant.slug if self.tenant is not None else "platform"
        return f"{self.user} {self.role} @ {scope}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ApiToken(models.Model):
    """A personal API token. Only its SHA-256 digest is stored; the token is shown once."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="First characters, to recognise a token.")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    def state(self, now: datetime | None = None) -> str:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "active"


class ServiceToken(models.Model):
    """A machine's token for one tenant with named scopes (``runtime:read``, ``telemetry:write``).

    Only its SHA-256 digest is stored; the token is shown once. Revoking it bites within
    seconds even where answers are cached (every cache is keyed by the runtime generation,
    which the revocation's event bumps).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="service_tokens")
    name = models.CharField(max_length=100)
    scopes = models.JSONField(default=list)
    prefix = models.CharField(max_length=16, help_text="First characters, to recognise a token.")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revoke_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["tenant__slug", "-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.tenant.slug}/{self.name})"

    def state(self, now: datetime | None = None) -> str:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


class Passkey(models.Model):
    """A WebAuthn credential a person registered to sign off with their own authenticator.

    The public key is kept as the authenticator gave it (COSE) and as SubjectPublicKeyInfo
    (what the offline verifier reads from the ``passkey.registered`` event). Never removed:
    revoking stamps ``revoked_at``, and an approval signed with a revoked key stops counting.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="passkeys")
    name = models.CharField(max_length=100)
    credential_id = models.CharField(max_length=1400, unique=True, help_text="base64url")
    public_key_cose = models.TextField(help_text="The COSE key, base64url.")
    public_key_spki = models.TextField(help_text="SubjectPublicKeyInfo (DER), base64url.")
    algorithm = models.IntegerField(help_text="COSE algorithm (-7 ES256, -8 EdDSA, -257 RS256).")
    sign_count = models.PositiveBigIntegerField(default=0)
    aaguid = models.CharField(max_length=36, blank=True)
    transports = models.JSONField(default=list, blank=True)
    backed_up = models.BooleanField(default=False)
    rp_id = models.CharField(max_length=253)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revoke_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["user__username", "-created_at"]
        triggers = undeletable("passkey")

    def __str__(self) -> str:
        return f"{self.user.username}: {self.name}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class PasskeyChallenge(models.Model):
    """A WebAuthn challenge the server issued: to register a passkey, or to sign one approval
    statement. Used at most once (``used_at``) and only until ``expires_at``."""

    class Purpose(models.TextChoices):
        REGISTER = "register", "Register a passkey"
        SIGN_OFF = "sign_off", "Sign off a change"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    challenge = models.CharField(max_length=100, help_text="base64url")
    statement = models.TextField(blank=True, help_text="The approval statement (sign-off).")
    subject = models.CharField(max_length=100, blank=True, help_text="The change's id (sign-off).")
    rp_id = models.CharField(max_length=253)
    origin = models.CharField(max_length=300)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.purpose} challenge for {self.user}"
