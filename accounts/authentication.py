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
    """Authenticates personal API tokens; a bad one gets 401 saying exactly why.

    No Authorization header at all is an anonymous request (public endpoints answer it,
    the session may authenticate it); any header that is there but is not a well-formed
    ``Bearer <token>`` is a 401 with the reason, never a fall-through to anonymous.
    """

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        # str.split() also splits on non-ASCII spaces (0xA0, 0x85): a header of only those is
        # present but holds nothing, which is malformed, not anonymous.
        parts = header.split()
        if not parts:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header: it holds no scheme or token; "
                "expected 'Bearer <token>'.",
                code="token_malformed",
            )
        if parts[0].lower() != self.keyword.lower():
            # Another scheme (Basic, a bare token...) would otherwise fall through to an
            # anonymous request: say instead why the credentials are not taken.
            raise exceptions.AuthenticationFailed(
                f"Unsupported Authorization scheme {parts[0][:20]!r}: expected 'Bearer <token>'.",
                code="token_malformed",
            )
        if len(parts) != 2 or not parts[1].isascii() or not parts[1].isprintable():
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
