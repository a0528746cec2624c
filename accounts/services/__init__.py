"""Every change to users, tenants, memberships, roles and tokens.

Each function is the only way its change is made: the admin, the pages, the
API, the CLI and tasks all call it. ``actor`` is the user who asked for the
change, or ``None`` for the system (the CLI run by an operator, a seed, a task).

A package along its seams: ``tenants``, ``users``, ``access`` (memberships and roles),
``tokens`` (personal), ``service_tokens``; ``common`` holds what they share. Every public
name is importable from ``accounts.services``.
"""

from __future__ import annotations

from accounts.services.access import (
    membership_add,
    membership_remove,
    role_grant,
    role_revoke,
    validate_role,
)
from accounts.services.common import SERVICE_TOKEN_PREFIX, TOKEN_PREFIX
from accounts.services.passkeys import (
    passkey_register,
    passkey_registration_begin,
    passkey_revoke,
)
from accounts.services.service_tokens import (
    service_token_create,
    service_token_revoke,
    validate_scopes,
)
from accounts.services.tenants import tenant_create, tenant_rename
from accounts.services.tokens import token_create, token_revoke, token_touch
from accounts.services.users import (
    user_create,
    user_set_active,
    user_set_admin_permissions,
    user_set_staff,
    user_set_superuser,
)

__all__ = [
    "SERVICE_TOKEN_PREFIX",
    "TOKEN_PREFIX",
    "membership_add",
    "membership_remove",
    "passkey_register",
    "passkey_registration_begin",
    "passkey_revoke",
    "role_grant",
    "role_revoke",
    "service_token_create",
    "service_token_revoke",
    "tenant_create",
    "tenant_rename",
    "token_create",
    "token_revoke",
    "token_touch",
    "user_create",
    "user_set_active",
    "user_set_admin_permissions",
    "user_set_staff",
    "user_set_superuser",
    "validate_role",
    "validate_scopes",
]
