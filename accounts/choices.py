"""Roles: the one place they are named."""

from django.db import models


class Role(models.TextChoices):
    """A role is granted per tenant; any member of a tenant may author without one."""

    REVIEWER = "reviewer", "Reviewer"
    ADMINISTRATOR = "administrator", "Administrator"
    PRIVACY_OFFICER = "privacy_officer", "Privacy officer"
    SECURITY_OFFICER = "security_officer", "Security officer"


#: The only role that may also be granted platform-wide (in every tenant).
PLATFORM_ROLES = frozenset({Role.ADMINISTRATOR})


class TokenScope(models.TextChoices):
    """What a tenant's service token may do (machines, not people)."""

    RUNTIME_READ = "runtime:read", "Read the runtime configuration"
    TELEMETRY_WRITE = "telemetry:write", "Send telemetry"
