"""Personal API tokens: issued to their user, shown once, revoked, touched when used."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import (
    ApiToken,
    User,
)
from accounts.selectors import is_platform_admin
from accounts.services.common import TOKEN_PREFIX, new_token
from governance.kernel.errors import Conflict, DomainError, Forbidden
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import event_record


@transaction.atomic
def token_create(
    *, user: User, name: str, actor: User | None, expires_days: int | None = None
) -> tuple[ApiToken, str]:
    """Issue a personal token for ``user``. The raw token is returned here and never again."""
    if actor is not None and actor.pk != user.pk and not is_platform_admin(actor):
        raise Forbidden("You can only create tokens for yourself.")
    if not user.is_active:
        raise DomainError(f"User '{user}' is deactivated.", field="username")
    days = settings.API_TOKEN_DEFAULT_EXPIRY_DAYS if expires_days is None else expires_days
    if days < 1 or days > settings.API_TOKEN_MAX_EXPIRY_DAYS:
        raise DomainError(
            f"Expiry must be between 1 and {settings.API_TOKEN_MAX_EXPIRY_DAYS} days.",
            field="expires_days",
        )
    name = (name or "").strip() or "token"
    if len(name) > 100:
        raise DomainError("Token name is at most 100 characters.", field="name")
    raw, prefix, digest = new_token(TOKEN_PREFIX)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=prefix,
        digest=digest,
        created_by=actor,
        expires_at=timezone.now() + timedelta(days=days),
    )
    event_record(
        kind=EventKind.TOKEN_CREATED,
        actor=actor,
        subject=token,
        payload={
            "username": user.username,
            "name": name,
            "prefix": token.prefix,
            "expires_at": token.expires_at.isoformat(),
        },
    )
    return token, raw


@transaction.atomic
def token_revoke(*, token: ApiToken, actor: User | None) -> ApiToken:
    """Revoke a token; requests that present it get 401 from now on."""
    if actor is not None and actor.pk != token.user_id and not is_platform_admin(actor):
        raise Forbidden("You can only revoke your own tokens.")
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is not None:
        raise Conflict("This token is already revoked.", field="token")
    token.revoked_at = timezone.now()
    token.revoked_by = actor
    token.save(update_fields=["revoked_at", "revoked_by"])
    event_record(
        kind=EventKind.TOKEN_REVOKED,
        actor=actor,
        subject=token,
        payload={"username": token.user.username, "prefix": token.prefix},
    )
    return token


def token_touch(*, token: ApiToken, now: datetime | None = None) -> None:
    """Record use, at most once a minute, so busy clients do not write on every request."""
    now = now or timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
