"""``Authorization: Bearer <token>`` for the REST API: personal tokens and service tokens.

Two kinds of bearer token, told apart by their first characters, and neither passes for
the other:

- a personal token (``gov_…``, :class:`BearerTokenAuthentication`) acts as its user on the
  ordinary API; a service token presented there is refused (401) saying where it belongs;
- a service token (``gsv_…``, :class:`ServiceTokenAuthentication`) is a machine of one
  tenant with scopes; it authenticates only the endpoints that list that class (runtime
  configuration, resolve, OFREP, telemetry), as a :class:`ServicePrincipal` (not a user),
  and those endpoints refuse personal tokens (401) and ask for a scope with
  :func:`require_scope`.

A verified service token is cached in the process, keyed by the runtime generation
(``governance.kernel.events.generation.current()``, which every event append changes), so a warm
request runs no SQL; revoking a token appends an event, so the next request in every
process verifies again and is refused. An entry is also re-verified once it is
``SERVICE_TOKEN_CACHE_SECONDS`` old (5 s), which bounds the delay even where the generation
cannot travel between servers (several hosts without ``REDIS_URL``).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, cast

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request
from typing_extensions import override

from accounts.choices import TokenScope
from accounts.models import ApiToken, User
from accounts.selectors import service_token_by_digest, token_by_raw, token_digest
from accounts.services import SERVICE_TOKEN_PREFIX, token_touch
from governance.kernel.events import generation
from governance.kernel.events.context import set_channel


def user_of(request: HttpRequest | Request) -> User:
    """The person of a request that a login, a personal token or the admin already guards
    (``login_required``, ``IsAuthenticated``, a staff-only site): a :class:`User`, never
    anonymous."""
    return cast(User, request.user)


def bearer_token(request: Request, keyword: str = "Bearer") -> str | None:
    """The token of a well-formed ``Authorization: Bearer <token>`` header; None without one.

    A header that is there but malformed (another scheme, no token, odd characters) is a
    401 saying why, never a fall-through to an anonymous request.
    """
    header = authentication.get_authorization_header(request).decode("latin-1")
    if not header:
        return None
    # str.split() also splits on non-ASCII spaces (0xA0, 0x85): a header of only those is
    # present but holds nothing, which is malformed, not anonymous.
    parts = header.split()
    if not parts:
        raise exceptions.AuthenticationFailed(
            "Malformed Authorization header: it holds no scheme or token; "
            f"expected '{keyword} <token>'.",
            code="token_malformed",
        )
    if parts[0].lower() != keyword.lower():
        # Another scheme (Basic, a bare token...) would otherwise fall through to an
        # anonymous request: say instead why the credentials are not taken.
        raise exceptions.AuthenticationFailed(
            f"Unsupported Authorization scheme {parts[0][:20]!r}: expected '{keyword} <token>'.",
            code="token_malformed",
        )
    if len(parts) != 2 or not parts[1].isascii() or not parts[1].isprintable():
        raise exceptions.AuthenticationFailed(
            f"Malformed Authorization header: expected '{keyword} <token>'.",
            code="token_malformed",
        )
    return parts[1]


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """Authenticates personal API tokens; a bad one gets 401 saying exactly why.

    No Authorization header at all is an anonymous request (public endpoints answer it,
    the session may authenticate it). A service token is refused here: it is a machine's,
    with scopes, and acts as nobody on the ordinary API.
    """

    keyword = "Bearer"

    @override
    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        raw = bearer_token(request, self.keyword)
        if raw is None:
            return None
        if raw.startswith(SERVICE_TOKEN_PREFIX):
            raise exceptions.AuthenticationFailed(
                f"A service token ({SERVICE_TOKEN_PREFIX}…) is accepted only by the runtime "
                "endpoints; use a personal token here.",
                code="service_token_not_accepted",
            )
        token = token_by_raw(raw)
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

    @override
    def authenticate_header(self, request: Any) -> str:
        return f'{self.keyword} realm="api"'


@dataclass(frozen=True)
class ServicePrincipal:
    """Who a service token speaks for: one tenant, with scopes. ``request.user`` on the
    endpoints that take service tokens; it is authenticated, but it is not a user and holds
    no role (code that asks roles of ``request.user`` must not be reached by it)."""

    token_id: uuid.UUID
    tenant_id: uuid.UUID
    tenant_slug: str
    name: str
    prefix: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    expires_at: datetime | None = None

    is_authenticated: ClassVar[bool] = True
    is_anonymous: ClassVar[bool] = False
    is_active: ClassVar[bool] = True
    is_staff: ClassVar[bool] = False
    is_superuser: ClassVar[bool] = False
    pk: ClassVar[None] = None

    def __str__(self) -> str:
        return self.get_username()

    def get_username(self) -> str:
        return f"service-token:{self.tenant_slug}/{self.prefix}"

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def covers_tenant(self, tenant_slug: str) -> bool:
        """A service token reads and writes for its own tenant only."""
        return tenant_slug == self.tenant_slug


@dataclass(frozen=True)
class _Verified:
    generation: str
    verified_at: float  # time.monotonic()
    principal: ServicePrincipal


#: digest -> the last verification, valid while the generation is unchanged (and young).
_verified: dict[str, _Verified] = {}
_verified_lock = threading.Lock()
#: Bound on the cache: far more tokens than a deployment has; cleared whole when reached.
CACHE_LIMIT = 10_000


def clear_service_token_cache() -> None:
    """Forget every cached verification (tests; never needed for correctness)."""
    with _verified_lock:
        _verified.clear()


def _verify_now(digest: str, generation_now: str) -> ServicePrincipal:
    token = service_token_by_digest(digest)
    if token is None:
        raise exceptions.AuthenticationFailed("Invalid service token.", code="token_invalid")
    if token.revoked_at is not None:
        raise exceptions.AuthenticationFailed(
            f"Service token {token.prefix}… was revoked at "
            f"{token.revoked_at.isoformat(timespec='seconds')}.",
            code="token_revoked",
        )
    principal = ServicePrincipal(
        token_id=token.pk,
        tenant_id=token.tenant_id,
        tenant_slug=token.tenant.slug,
        name=token.name,
        prefix=token.prefix,
        scopes=frozenset(token.scopes or ()),
        expires_at=token.expires_at,
    )
    with _verified_lock:
        if len(_verified) >= CACHE_LIMIT:
            _verified.clear()
        _verified[digest] = _Verified(generation_now, time.monotonic(), principal)
    return principal


def service_principal(raw_token: str) -> ServicePrincipal:
    """The principal of a raw service token, or AuthenticationFailed saying why.

    Warm (verified in this process since the last change anywhere, and less than
    ``SERVICE_TOKEN_CACHE_SECONDS`` ago): no SQL, one generation read. The generation is
    read before the row, so a revocation committed in between makes the next call verify
    again rather than trust what was read.
    """
    return verified_service_principal(raw_token)[0]


def verified_service_principal(raw_token: str) -> tuple[ServicePrincipal, str]:
    """:func:`service_principal` and the runtime generation it was checked against."""
    digest = token_digest(raw_token)
    generation_now = generation.current()
    hit = _verified.get(digest)
    max_age = float(settings.SERVICE_TOKEN_CACHE_SECONDS)
    if (
        hit is not None
        and hit.generation == generation_now
        and time.monotonic() - hit.verified_at < max_age
    ):
        principal = hit.principal
    else:
        principal = _verify_now(digest, generation_now)
    if principal.expires_at is not None and principal.expires_at <= timezone.now():
        raise exceptions.AuthenticationFailed(
            f"Service token {principal.prefix}… expired at "
            f"{principal.expires_at.isoformat(timespec='seconds')}.",
            code="token_expired",
        )
    return principal, generation_now


class ServiceTokenAuthentication(authentication.BaseAuthentication):
    """Authenticates service tokens (``Authorization: Bearer gsv_…``) as a :class:`ServicePrincipal`.

    For the endpoints machines call (runtime configuration, resolve, OFREP, telemetry):
    list it in the view's ``authentication_classes`` and pair it with :func:`require_scope`.
    No header is an anonymous request (401 from the permission); a personal token is
    refused with 401 saying a service token is needed. The runtime generation the token was
    checked against is left on the request as ``request.runtime_generation``, so a view that
    keys its own cache by the generation need not read it a second time (a Redis round trip).
    """

    keyword = "Bearer"
    #: Refuse any other bearer token (True), or leave it to the next class (False, see
    #: :class:`ServiceOrPersonalTokenAuthentication`).
    refuse_personal_tokens: ClassVar[bool] = True

    @override
    def authenticate(self, request: Request) -> tuple[ServicePrincipal, ServicePrincipal] | None:
        raw = bearer_token(request, self.keyword)
        if raw is None:
            return None
        if not raw.startswith(SERVICE_TOKEN_PREFIX):
            if not self.refuse_personal_tokens:
                return None
            raise exceptions.AuthenticationFailed(
                f"This endpoint takes a service token ({SERVICE_TOKEN_PREFIX}…) of the tenant; "
                "a personal token is not accepted here.",
                code="service_token_required",
            )
        principal, generation_now = verified_service_principal(raw)
        request._request.runtime_generation = generation_now  # type: ignore[attr-defined]
        set_channel(f"service-token:{principal.prefix}")
        return principal, principal

    @override
    def authenticate_header(self, request: Any) -> str:
        return f'{self.keyword} realm="api"'


class ServiceOrPersonalTokenAuthentication(ServiceTokenAuthentication):
    """For endpoints that machines and people both read (the runtime configuration):
    service tokens here, any other bearer token left to the next class. List it first:
    ``[ServiceOrPersonalTokenAuthentication, BearerTokenAuthentication, SessionAuthentication]``
    (``BearerTokenAuthentication`` refuses service tokens, so it must come after).

    A person is then ``request.user`` (a User, authorised by membership, holding no scope);
    a machine is a :class:`ServicePrincipal`. Neither passes for the other.
    """

    refuse_personal_tokens = False


class HasTokenScope(permissions.BasePermission):
    """Lets through a service token that holds ``required_scope`` (a class attribute, or the
    view's ``required_scope``); anything else is refused saying which scope is needed.
    Use :func:`require_scope` to make one for a scope."""

    required_scope: ClassVar[str] = ""
    message = "A service token is needed."

    def has_permission(self, request: Request, view: Any) -> bool:
        scope = getattr(view, "required_scope", "") or self.required_scope
        principal = request.user
        if not isinstance(principal, ServicePrincipal):
            self.message = f"A service token with the scope '{scope}' is needed."
            return False
        if not scope or not principal.has_scope(scope):
            held = ", ".join(sorted(principal.scopes)) or "none"
            self.message = (
                f"Service token {principal.prefix}… lacks the scope '{scope}' (it holds: {held})."
            )
            return False
        return True


def require_scope(scope: str) -> type[HasTokenScope]:
    """A permission class that requires a service token with ``scope``:
    ``permission_classes = [require_scope(TokenScope.RUNTIME_READ)]``."""
    if scope not in TokenScope.values:
        raise ValueError(f"Unknown scope {scope!r}; choose from: {', '.join(TokenScope.values)}.")
    name = "Requires" + "".join(part.title() for part in str(scope).replace(":", "_").split("_"))
    return type(name, (HasTokenScope,), {"required_scope": str(scope)})
