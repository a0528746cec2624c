"""Checks every registry service shares: who may author, what a slug looks like."""

from __future__ import annotations

import re

from accounts.models import Tenant, User
from governance.kernel.errors import DomainError
from registry import permissions
from registry.models import (
    SLUG_RE,
)


def require_author(actor: User | None, tenant: Tenant) -> None:
    """Any member of a tenant may author; the system (CLI, import) may too."""
    permissions.can_publish(actor, tenant).require()


def check_slug(slug: str) -> None:
    if not re.match(SLUG_RE, slug or ""):
        raise DomainError("Use lowercase letters, digits and hyphens (1-100).", field="slug")
