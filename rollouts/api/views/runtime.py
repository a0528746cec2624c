"""REST endpoints of the runtime: a tenant's signed configuration of an application, and
resolving one slot.

Thin: ``rollouts.runtime`` builds, caches and resolves. Another tenant's application answers
404, as if it did not exist; ``304`` answers a matching ``If-None-Match``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from typing_extensions import override

from accounts.authentication import (
    BearerTokenAuthentication,
    ServiceOrPersonalTokenAuthentication,
    ServicePrincipal,
    verified_service_principal,
)
from accounts.choices import TokenScope
from accounts.selectors import tenant_for_user
from governance.kernel.errors import Forbidden, NotFound
from registry.api.views import Resolve as RegistryResolve
from rollouts import runtime
from rollouts.api.serializers import (
    AnswerSerializer,
    ResolveRequestSerializer,
    RuntimeDocumentSerializer,
    resolve_request,
)
from rollouts.choices import Reason

#: People (personal token, session) and machines (service tokens of the tenant, scope
#: ``runtime:read``).
RUNTIME_AUTHENTICATION: list[type[BaseAuthentication]] = [
    ServiceOrPersonalTokenAuthentication,
    BearerTokenAuthentication,
    SessionAuthentication,
]


def reader_may_read(principal: Any, tenant_slug: str) -> None:
    """The one rule for reading a tenant's runtime: NotFound/Forbidden otherwise.

    A service token reads its own tenant with the ``runtime:read`` scope; a person reads a
    tenant they may see (member or platform administrator). Another tenant reads as
    missing, so the answer confirms nothing.
    """
    if isinstance(principal, ServicePrincipal):
        if not principal.has_scope(TokenScope.RUNTIME_READ):
            held = ", ".join(sorted(principal.scopes)) or "none"
            raise Forbidden(
                f"Service token {principal.prefix}… lacks the scope "
                f"'{TokenScope.RUNTIME_READ}' (it holds: {held}).",
                field="scope",
            )
        if not principal.covers_tenant(tenant_slug):
            raise NotFound(f"No tenant '{tenant_slug}' that this token reads.", field="tenant")
        return
    tenant_for_user(principal, tenant_slug)


def request_generation(request: Request) -> str | None:
    """The generation a service token was just checked against (saves a Redis read), if any."""
    return getattr(request._request, "runtime_generation", None)


def _service_token_of(request: HttpRequest) -> tuple[ServicePrincipal | None, str | None]:
    """The hot paths' token check: a well-formed, valid service token's principal and the
    generation it was checked against; (None, None) for anything else, which then goes
    through DRF's authentication and is refused or admitted there, worded as everywhere."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header.startswith("Bearer gsv_") or " " in header[7:]:
        return None, None
    try:
        return verified_service_principal(header[7:])
    except Exception:  # noqa: BLE001 - refused on the full path
        return None, None


class _JSONOnly(APIView):
    """Machines read these endpoints at high rates: JSON only, without negotiating for it."""

    renderer_classes: Sequence[type[BaseRenderer]] = [JSONRenderer]

    @override
    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        return JSONRenderer(), JSONRenderer.media_type


TENANT = OpenApiParameter("tenant", str, OpenApiParameter.PATH, description="Tenant slug")
APPLICATION = OpenApiParameter(
    "application", str, OpenApiParameter.PATH, description="Application slug"
)


class RuntimeSnapshotView(_JSONOnly, APIView):
    """The whole resolved runtime configuration of an application for a tenant, signed.

    Cache it and revalidate with ``If-None-Match``: ``304`` (no body) while nothing changed.
    The body's ``snapshot`` is RFC 8785 canonical JSON; ``signature.value`` is the Ed25519
    signature (by ``signature.key_id``, see ``GET /api/v1/keys/``) of its SHA-256.
    """

    authentication_classes = RUNTIME_AUTHENTICATION
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        parameters=[
            TENANT,
            APPLICATION,
            OpenApiParameter(
                "If-None-Match", str, OpenApiParameter.HEADER, description="A previous ETag"
            ),
        ],
        responses={
            200: RuntimeDocumentSerializer,
            304: OpenApiResponse(description="Unchanged since the ETag sent"),
            404: OpenApiResponse(description="No such tenant or application for the caller"),
        },
    )
    def get(self, request: Request, tenant: str, application: str) -> HttpResponse:
        reader_may_read(request.user, tenant)
        return self._document(
            request, tenant, application, generation_now=request_generation(request)
        )

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method == "GET":
            principal, generation_now = _service_token_of(request)
            if principal is not None:
                try:
                    reader_may_read(principal, kwargs["tenant"])
                    return self._document(
                        request, kwargs["tenant"], kwargs["application"], generation_now
                    )
                except Exception:  # noqa: BLE001, S110 - every refusal is answered by the full path
                    pass
        return super().dispatch(request, *args, **kwargs)

    @staticmethod
    def _document(
        request: HttpRequest | Request, tenant: str, application: str, generation_now: str | None
    ) -> HttpResponse:
        snap = runtime.snapshot(tenant, application, generation_now=generation_now)
        headers = {"ETag": snap.etag, "Cache-Control": "private, no-cache"}
        held = snap.unchanged_for(request.headers.get("If-None-Match", ""))
        if held is not None:  # the client's document is current (maybe an older sequence)
            headers["ETag"] = held
            return HttpResponse(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
        return HttpResponse(snap.document(), content_type="application/json", headers=headers)


class ResolveView(_JSONOnly, RegistryResolve):
    """``GET ?ref=``: the registry's reference resolution (an unversioned reference = the active
    version only). ``POST``: what one slot serves for a tenant and subject, and why."""

    authentication_classes = RUNTIME_AUTHENTICATION
    permission_classes = [permissions.IsAuthenticated]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method == "POST":
            fast = self._service_token_answer(request)
            if fast is not None:
                return fast
        return super().dispatch(request, *args, **kwargs)

    @staticmethod
    def _service_token_answer(request: HttpRequest) -> HttpResponse | None:
        """The hot path: a service token asking what a slot serves, answered with the same
        rules (token check, body check, read rule, ``runtime.answer``) without DRF's request
        wrapping, negotiation and rendering. Anything but a plain answer (a refusal, a
        switched-off slot, bad input) returns None and goes the full way, so refusals are
        worded and logged exactly as everywhere else."""
        principal, generation_now = _service_token_of(request)
        if principal is None:
            return None
        try:
            data = resolve_request(json.loads(request.body))
            reader_may_read(principal, data.tenant)
            found = runtime.answer(
                data.tenant,
                data.application,
                data.slot,
                subject=data.subject or None,
                pin=data.pin,
                generation_now=generation_now,
            )
        except Exception:  # noqa: BLE001 - every refusal is answered by the full path
            return None
        if found.reason == Reason.DISABLED:
            return None
        body = json.dumps(found.as_json(), ensure_ascii=False, separators=(",", ":"))
        return HttpResponse(body.encode(), content_type="application/json")

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if request.method == "GET" and isinstance(request.user, ServicePrincipal):
            # The registry's lookup reads as a person; a machine resolves slots (POST).
            raise Forbidden("Service tokens resolve slots with POST /api/v1/resolve/.", field="ref")

    @extend_schema(
        request=ResolveRequestSerializer,
        responses={
            200: AnswerSerializer,
            400: OpenApiResponse(description="Bad input; error.field names it"),
            404: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="No such tenant, application, slot or servable pin; or the slot "
                "is switched off (the answer with reason DISABLED, and an error)",
            ),
            409: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="The artifact's safety switch is engaged: the answer with reason "
                "DISABLED, variant halted, 'halted' saying who engaged it and why, no version, "
                "and an error with code 'halted'",
            ),
        },
    )
    def post(self, request: Request) -> Response:
        data = resolve_request(request.data)
        reader_may_read(request.user, data.tenant)
        found = runtime.answer(
            data.tenant,
            data.application,
            data.slot,
            subject=data.subject or None,
            pin=data.pin,
            generation_now=request_generation(request),
        )
        out = found.as_json()
        if found.halted is not None:
            error = {"code": "halted", "message": found.halted, "field": "slot"}
            return Response({"error": error, **out}, status=status.HTTP_409_CONFLICT)
        if found.reason == Reason.DISABLED:
            error = {
                "code": "disabled",
                "message": f"{found.slot} serves nothing for {found.tenant} (switched off).",
                "field": "slot",
            }
            return Response({"error": error, **out}, status=status.HTTP_404_NOT_FOUND)
        return Response(out)
