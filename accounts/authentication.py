"""``Authorization: Bearer <token>`` for the REST API."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.models import ApiToken, User
from accounts.selectors import token_by_raw
from accounts.services import token_touch
from governance.events.context import set_channel


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """Authenticates personal API tokens; a bad one gets 401 saying exactly why."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if parts[0].lower() != self.keyword.lower():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header: expected 'Bearer <token>'.", code="token_malformed"
            )
        token = token_by_raw(parts[1])
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.", code="token_invalid")
        now = timezone.now()
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed(
                f"Token {token.prefix}… was revoked at {token.revoked_at.isoformat(timespec='seconds')}.",
                code="token_revoked",
            )
        if token.expires_at <= now:
            raise exceptions.AuthenticationFailed(
                f"Token {token.prefix}… expired at {token.expires_at.isoformat(timespec='seconds')}.",
                code="token_expired",
            )
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(
                "The user of this token is deactivated.", code="user_inactive"
            )
        token_touch(token=token, now=now)
        set_channel(f"token:{token.prefix}")
        return token.user, token

    def authenticate_header(self, request: Any) -> str:
        return f'{self.keyword} realm="api"'
