"""REST endpoints of rollouts: the runtime (a tenant's signed configuration of an application,
resolving one slot) and the management of applications, slots, overrides and rollouts.

Thin: ``rollouts.runtime`` builds, caches and resolves; serializers check the shape of input,
one service call decides, selectors read what is shown. Another tenant's application or
rollout answers 404, as if it did not exist; ``304`` answers a matching ``If-None-Match``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, status, viewsets
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.decorators import action
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
from accounts.models import User
from accounts.selectors import tenant_for_user, tenants_visible_to
from governance.kernel.errors import DomainError, Forbidden, NotFound
from registry import selectors as registry_selectors
from registry.api.views import Resolve as RegistryResolve
from registry.models import Artifact, Version
from reviews import selectors as reviews_selectors
from rollouts import runtime, selectors, services
from rollouts.api.serializers import (
    AnswerSerializer,
    ApplicationCreateSerializer,
    ApplicationSerializer,
    ApplicationSlotDetailSerializer,
    ApplicationSlotSerializer,
    ApplicationUpdateSerializer,
    OverrideSerializer,
    OverrideSetSerializer,
    ReasonSerializer,
    ResolveRequestSerializer,
    RolloutActionSerializer,
    RolloutCreateSerializer,
    RolloutDetailSerializer,
    RolloutFlagSerializer,
    RolloutReasonedActionSerializer,
    RolloutRowSerializer,
    RuntimeDocumentSerializer,
    SlotCreateSerializer,
    SlotUpdateSerializer,
    resolve_request,
)
from rollouts.choices import Reason
from rollouts.filtersets import RolloutFilterSet
from rollouts.models import Override, Rollout, Slot

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
        if found.reason == Reason.DISABLED:
            error = {
                "code": "disabled",
                "message": f"{found.slot} serves nothing for {found.tenant} (switched off).",
                "field": "slot",
            }
            return Response({"error": error, **out}, status=status.HTTP_404_NOT_FOUND)
        return Response(out)


# --- management: applications, slots, overrides, rollouts ----------------------------------

NUMBER = OpenApiParameter(
    "number", str, OpenApiParameter.PATH, description="RO-<number>, or the number alone"
)
SLUG = OpenApiParameter("slug", str, OpenApiParameter.PATH, description="The application's slug")
NAME = OpenApiParameter("name", str, OpenApiParameter.PATH, description="The slot's name")
OVERRIDE_TENANT = OpenApiParameter(
    "tenant", str, OpenApiParameter.PATH, description="The tenant whose override it is"
)
ACTIONS = ("start", "advance", "pause", "resume", "abort", "rollback", "flag")


def _actor(request: Request) -> User:
    return cast(User, request.user)


@contextmanager
def _field_renamed(field: str) -> Iterator[None]:
    """A lookup's refusal names the body's field (``change``, ``artifact``, ``version``)."""
    try:
        yield
    except DomainError as exc:
        raise type(exc)(exc.message, field=field, code=exc.code) from exc


def slot_for(user: Any, slug: str, name: str) -> Slot:
    application = selectors.application_by_slug(user, slug)
    found = (
        Slot.objects.select_related(
            "application__tenant",
            "created_by",
            "artifact__artifact_class",
            "artifact__tenant",
            "artifact__active_version__artifact__artifact_class",
            "artifact__active_version__artifact__tenant",
        )
        .filter(application=application, name=name)
        .first()
    )
    if found is None:
        raise NotFound(f"No slot '{name}' in {application.slug}.", field="name")
    return found


def _slot_detail(slot: Slot, user: Any, code: int = status.HTTP_200_OK) -> Response:
    fresh = slot_for(user, slot.application.slug, slot.name)
    tenants = set(tenants_visible_to(user).values_list("pk", flat=True))
    platform = selectors.platform_tenant()
    if platform is not None:  # the platform's pointers reach everyone
        tenants.add(platform.pk)
    context = {"user": user, "tenants": tenants}
    return Response(ApplicationSlotDetailSerializer(fresh, context=context).data, status=code)


def _rollout_detail(rollout: Rollout, user: Any, code: int = status.HTTP_200_OK) -> Response:
    """The rollout as it stands after a service call (re-read: services work on a locked copy)."""
    fresh = selectors.rollout_by_number(user, rollout.number)
    return Response(RolloutDetailSerializer(fresh, context={"user": user}).data, status=code)


def _artifact(text: str, user: Any) -> Artifact:
    """The artifact a slot binds: one of a tenant the caller sees, or a shared platform one."""
    with _field_renamed("artifact"):
        ref = registry_selectors.parse(text)
        if ref.class_slug is None or ref.tenant is None or ref.version is not None:
            raise DomainError(f"Name the artifact as class/tenant/slug, not '{text}'.")
        if ref.tenant == settings.PLATFORM_TENANT_SLUG:  # shared with every tenant
            return registry_selectors.artifact_by_path_unscoped(
                ref.class_slug, ref.tenant, ref.slug
            )
        return registry_selectors.artifact_by_path(
            ref.class_slug, ref.tenant, ref.slug, visible_to=user
        )


def _override_version(slot: Slot, text: str) -> Version:
    """A version of the slot's artifact (which the caller sees through the slot): its number
    (``1.2.0``) or any full reference. Anything else reads as missing, whatever it names."""
    missing = NotFound(f"No version '{text}' of {slot.artifact.path}.", field="version")
    ref = text if "/" in text else f"{slot.artifact.path}/{text}"
    try:
        version = registry_selectors.version_by_reference_unscoped(ref)
    except DomainError:
        raise missing from None
    if version.artifact_id != slot.artifact_id:
        raise missing
    return version


# --- applications and slots ---------------------------------------------------------------


class ApplicationList(APIView):
    """Applications you may read: your tenants' and the platform's (shared)."""

    @extend_schema(responses=ApplicationSerializer(many=True))
    def get(self, request: Request) -> Response:
        rows = selectors.applications_visible_to(request.user).select_related(
            "tenant", "created_by"
        )
        return Response(ApplicationSerializer(rows, many=True).data)

    @extend_schema(request=ApplicationCreateSerializer, responses={201: ApplicationSerializer})
    def post(self, request: Request) -> Response:
        """Declare an application of a tenant (its administrators)."""
        body = ApplicationCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        made = services.application_create(
            tenant=tenant_for_user(request.user, data["tenant"]),
            slug=data["slug"],
            name=data["name"],
            description=data["description"],
            actor=_actor(request),
        )
        fresh = selectors.application_by_slug(request.user, made.slug)
        return Response(ApplicationSerializer(fresh).data, status=status.HTTP_201_CREATED)


class ApplicationDetail(APIView):
    """One application and its slots."""

    @extend_schema(parameters=[SLUG], responses=ApplicationSerializer)
    def get(self, request: Request, slug: str) -> Response:
        return Response(
            ApplicationSerializer(selectors.application_by_slug(request.user, slug)).data
        )

    @extend_schema(
        parameters=[SLUG], request=ApplicationUpdateSerializer, responses=ApplicationSerializer
    )
    def patch(self, request: Request, slug: str) -> Response:
        application = selectors.application_by_slug(request.user, slug)
        body = ApplicationUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.application_update(
            application=application,
            name=body.validated_data.get("name"),
            description=body.validated_data.get("description"),
            actor=_actor(request),
        )
        return Response(
            ApplicationSerializer(selectors.application_by_slug(request.user, slug)).data
        )


class SlotList(APIView):
    """The slots of an application, each with its default version."""

    @extend_schema(parameters=[SLUG], responses=ApplicationSlotSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        application = selectors.application_by_slug(request.user, slug)
        rows = application.slots.select_related(
            "application",
            "created_by",
            "artifact__artifact_class",
            "artifact__tenant",
            "artifact__active_version__artifact__artifact_class",
            "artifact__active_version__artifact__tenant",
        )
        return Response(ApplicationSlotSerializer(rows, many=True).data)

    @extend_schema(
        parameters=[SLUG],
        request=SlotCreateSerializer,
        responses={201: ApplicationSlotDetailSerializer},
    )
    def post(self, request: Request, slug: str) -> Response:
        """Declare a slot bound to an artifact that has an active version (administrators)."""
        application = selectors.application_by_slug(request.user, slug)
        body = SlotCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        slot = services.slot_create(
            application=application,
            name=data["name"],
            artifact=_artifact(data["artifact"], request.user),
            description=data["description"],
            actor=_actor(request),
        )
        return _slot_detail(slot, request.user, status.HTTP_201_CREATED)


class SlotDetail(APIView):
    """A slot: its default, the overrides you may see, rollouts moving it, and its history."""

    @extend_schema(parameters=[SLUG, NAME], responses=ApplicationSlotDetailSerializer)
    def get(self, request: Request, slug: str, name: str) -> Response:
        return _slot_detail(slot_for(request.user, slug, name), request.user)

    @extend_schema(
        parameters=[SLUG, NAME],
        request=SlotUpdateSerializer,
        responses=ApplicationSlotDetailSerializer,
    )
    def patch(self, request: Request, slug: str, name: str) -> Response:
        slot = slot_for(request.user, slug, name)
        body = SlotUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.slot_update(
            slot=slot, description=body.validated_data["description"], actor=_actor(request)
        )
        return _slot_detail(slot, request.user)


class OverrideDetail(APIView):
    """A tenant's own pointer for a slot: set it (PUT) or clear it (DELETE), saying why."""

    @extend_schema(parameters=[SLUG, NAME, OVERRIDE_TENANT], responses=OverrideSerializer)
    def get(self, request: Request, slug: str, name: str, tenant: str) -> Response:
        slot = slot_for(request.user, slug, name)
        found = tenant_for_user(request.user, tenant)
        row = Override.objects.filter(slot=slot, tenant=found).first()
        if row is None:
            raise NotFound(f"{found.slug} has no override of {slot}.", field="tenant")
        return Response(OverrideSerializer(row).data)

    @extend_schema(
        parameters=[SLUG, NAME, OVERRIDE_TENANT],
        request=OverrideSetSerializer,
        responses=OverrideSerializer,
    )
    def put(self, request: Request, slug: str, name: str, tenant: str) -> Response:
        slot = slot_for(request.user, slug, name)
        found = tenant_for_user(request.user, tenant)
        body = OverrideSetSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        row = services.override_set(
            slot=slot,
            tenant=found,
            version=_override_version(slot, body.validated_data["version"]),
            reason=body.validated_data["reason"],
            actor=_actor(request),
        )
        return Response(OverrideSerializer(row).data)

    @extend_schema(
        parameters=[SLUG, NAME, OVERRIDE_TENANT], request=ReasonSerializer, responses={204: None}
    )
    def delete(self, request: Request, slug: str, name: str, tenant: str) -> Response:
        """Clear it: the tenant gets the default again. The reason may come as ``?reason=``."""
        slot = slot_for(request.user, slug, name)
        found = tenant_for_user(request.user, tenant)
        data = request.data if request.data else request.query_params
        body = ReasonSerializer(data={"reason": data.get("reason", "")})
        body.is_valid(raise_exception=True)
        services.override_clear(
            slot=slot, tenant=found, reason=body.validated_data["reason"], actor=_actor(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- rollouts ------------------------------------------------------------------------------


class RolloutViewSet(viewsets.GenericViewSet[Rollout]):
    """Rollouts of your tenants: start them from a promoted change, and move them on."""

    lookup_field = "number"
    lookup_value_regex = "[^/]+"
    serializer_class = RolloutRowSerializer
    filterset_class = RolloutFilterSet
    queryset = Rollout.objects.none()

    def get_queryset(self) -> QuerySet[Rollout]:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Rollout.objects.none()
        return selectors.rollouts_visible_to(self.request.user).select_related(
            "tenant", "change", "created_by"
        )

    @extend_schema(responses=RolloutRowSerializer(many=True))
    def list(self, _request: Request) -> Response:
        rows = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(RolloutRowSerializer(page, many=True).data)

    @extend_schema(request=RolloutCreateSerializer, responses={201: RolloutDetailSerializer})
    def create(self, request: Request) -> Response:
        """Make a rollout (draft) of a promoted change; ``start: true`` also starts it."""
        body = RolloutCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        with _field_renamed("change"):
            change = reviews_selectors.change_by_reference(data["change"], visible_to=request.user)
        rollout = services.rollout_create(
            change=change,
            actor=_actor(request),
            strategy=data["strategy"],
            steps=data["steps"],
            target=data["target"],
            cohort=data["cohort"],
            flag_key=data["flag_key"],
            flag_expires_at=data["flag_expires_at"],
            reason=data["reason"],
        )
        if data["start"]:
            rollout = services.rollout_start(
                rollout=rollout,
                actor=_actor(request),
                revision=rollout.revision,
                reason=data["reason"],
            )
        return _rollout_detail(rollout, request.user, status.HTTP_201_CREATED)

    @extend_schema(parameters=[NUMBER], responses=RolloutDetailSerializer)
    def retrieve(self, request: Request, number: str) -> Response:
        return _rollout_detail(selectors.rollout_by_number(request.user, number), request.user)

    def _act(
        self,
        request: Request,
        number: str,
        service: Callable[..., Rollout],
        shape: type[RolloutActionSerializer] = RolloutActionSerializer,
        **extra: Any,
    ) -> Response:
        rollout = selectors.rollout_by_number(request.user, number)
        body = shape(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        done = service(rollout=rollout, actor=_actor(request), **data, **extra)
        return _rollout_detail(done, request.user)

    @extend_schema(
        parameters=[NUMBER], request=RolloutActionSerializer, responses=RolloutDetailSerializer
    )
    @action(detail=True, methods=["post"])
    def start(self, request: Request, number: str) -> Response:
        """Draft to its first step (a canary needs manifest phases 1-4 to pass)."""
        return self._act(request, number, services.rollout_start)

    @extend_schema(
        parameters=[NUMBER], request=RolloutActionSerializer, responses=RolloutDetailSerializer
    )
    @action(detail=True, methods=["post"])
    def advance(self, request: Request, number: str) -> Response:
        """The next step; past the last one the rollout succeeds and the default moves."""
        return self._act(request, number, services.rollout_advance)

    @extend_schema(
        parameters=[NUMBER],
        request=RolloutReasonedActionSerializer,
        responses=RolloutDetailSerializer,
    )
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, number: str) -> Response:
        """Hold at the current step (the canary set stays the same)."""
        return self._act(request, number, services.rollout_pause, RolloutReasonedActionSerializer)

    @extend_schema(
        parameters=[NUMBER],
        request=RolloutReasonedActionSerializer,
        responses=RolloutDetailSerializer,
    )
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, number: str) -> Response:
        return self._act(request, number, services.rollout_resume, RolloutReasonedActionSerializer)

    @extend_schema(
        parameters=[NUMBER],
        request=RolloutReasonedActionSerializer,
        responses=RolloutDetailSerializer,
    )
    @action(detail=True, methods=["post"])
    def abort(self, request: Request, number: str) -> Response:
        """Stop it where it stands."""
        return self._act(request, number, services.rollout_abort, RolloutReasonedActionSerializer)

    @extend_schema(
        parameters=[NUMBER],
        request=RolloutReasonedActionSerializer,
        responses=RolloutDetailSerializer,
    )
    @action(detail=True, methods=["post"])
    def rollback(self, request: Request, number: str) -> Response:
        """Restore the exact previous pointers of every slot it moved (no approvals)."""
        return self._act(
            request, number, services.rollout_rollback, RolloutReasonedActionSerializer
        )

    @extend_schema(
        parameters=[NUMBER], request=RolloutFlagSerializer, responses=RolloutDetailSerializer
    )
    @action(detail=True, methods=["post"])
    def flag(self, request: Request, number: str) -> Response:
        """Turn a flag rollout's flag on (serve the candidate) or off."""
        return self._act(request, number, services.rollout_flag_set, RolloutFlagSerializer)


@extend_schema(exclude=True)
class UnknownRolloutAction(APIView):
    """Any other ``rollouts/{number}/{action}/``: a JSON 404 naming the action."""

    def _refuse(self, _request: Request, *, action: str, **_url: str) -> Response:
        raise NotFound(
            f"No action '{action}' on rollouts; use {', '.join(ACTIONS[:-1])} or {ACTIONS[-1]}.",
            field="action",
        )

    get = post = put = patch = delete = _refuse
