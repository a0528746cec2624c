"""REST endpoints of the event log and of waivers. Thin: selectors read, services write."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, cast

from django.db.models import QuerySet
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Tenant, User
from accounts.selectors import tenant_for_user
from governance import selectors as governance_selectors
from governance.api.filters import WaiverQuerySerializer
from governance.api.serializers import (
    CheckpointSerializer,
    ConsistencyProofSerializer,
    EventDetailSerializer,
    EventSerializer,
    InclusionProofSerializer,
    SigningKeySerializer,
    VerificationRunSerializer,
    WaiverDetailSerializer,
    WaiverGrantSerializer,
    WaiverRenewSerializer,
    WaiverRevokeSerializer,
    WaiverSerializer,
)
from governance.filtersets import EventFilterSet
from governance.kernel.errors import DomainError, NotFound
from governance.kernel.events import selectors
from governance.kernel.events.models import Checkpoint, Event, SigningKey, VerificationRun
from governance.kernel.events.services import checkpoint_create, verification_start
from governance.models import Waiver
from governance.selectors import waivers_matching
from governance.services import waiver_countersign, waiver_grant, waiver_renew, waiver_revoke
from registry import selectors as registry_selectors
from registry.models import Artifact
from reviews.selectors import change_by_reference


class NewestFirst(CursorPagination):
    ordering = "-seq"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class CheckpointPages(CursorPagination):
    ordering = "-tree_size"
    page_size = 50


def _int_param(request: Request, name: str, required: bool = False) -> int | None:
    raw = request.query_params.get(name)
    if not raw:
        if required:
            raise DomainError(f"'{name}' is required.", field=name)
        return None
    try:
        return int(raw)
    except ValueError:
        raise DomainError(f"'{name}' must be a whole number.", field=name) from None


class EventViewSet(viewsets.ReadOnlyModelViewSet):
    """The log, newest first. Members see their tenants' events; platform administrators see all."""

    lookup_field = "seq"
    lookup_value_regex = r"\d+"
    pagination_class = NewestFirst
    filter_backends = [DjangoFilterBackend]
    filterset_class = EventFilterSet

    def get_queryset(self) -> QuerySet[Event]:
        if getattr(self, "swagger_fake_view", False):
            return Event.objects.none()
        return selectors.events_visible_to(self.request.user)

    def get_serializer_class(self) -> Any:
        return EventDetailSerializer if self.action == "retrieve" else EventSerializer

    def retrieve(self, request: Request, seq: str) -> Response:
        return Response(
            EventDetailSerializer(selectors.event_for_user(request.user, int(seq))).data
        )

    @extend_schema(
        parameters=[
            OpenApiParameter("size", OpenApiTypes.INT, description="tree size (default: current)")
        ],
        responses=InclusionProofSerializer,
    )
    @action(detail=True, methods=["get"])
    def proof(self, request: Request, seq: str) -> Response:
        """RFC 9162 inclusion proof of this event in the tree of the first `size` events."""
        event = selectors.event_for_user(request.user, int(seq))
        return Response(selectors.inclusion_proof(event, _int_param(request, "size")))

    @extend_schema(methods=["GET"], responses=VerificationRunSerializer)
    @extend_schema(methods=["POST"], request=None, responses={202: VerificationRunSerializer})
    @action(detail=False, methods=["get", "post"], filter_backends=[], pagination_class=None)
    def verify(self, request: Request) -> Response:
        """GET: the latest verification run. POST: queue a full verification (administrators)."""
        if request.method == "POST":
            run = verification_start(actor=request.user)
            return Response(VerificationRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)
        latest = selectors.latest_verification_for(request.user)
        if latest is None:
            raise NotFound("No verification has run yet.")
        return Response(VerificationRunSerializer(latest).data)


class VerificationRunViewSet(viewsets.ReadOnlyModelViewSet):
    """Verification runs with their progress: the caller's own, or all for a platform administrator."""

    serializer_class = VerificationRunSerializer
    queryset = VerificationRun.objects.none()
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[VerificationRun]:
        """The caller's own runs (every run for a platform administrator); others answer 404."""
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return VerificationRun.objects.none()
        return selectors.verification_runs_visible_to(self.request.user)


class CheckpointViewSet(viewsets.GenericViewSet):
    """Signed tree heads, newest first, and consistency proofs between them."""

    serializer_class = CheckpointSerializer
    queryset = Checkpoint.objects.all()
    pagination_class = CheckpointPages
    filter_backends: list[Any] = []

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(selectors.checkpoints())
        return self.get_paginated_response(CheckpointSerializer(page, many=True).data)  # type: ignore[arg-type]

    @extend_schema(request=None, responses={201: CheckpointSerializer, 200: CheckpointSerializer})
    def create(self, request: Request) -> Response:
        """Sign the current tree head now (platform administrators)."""
        made = checkpoint_create(actor=request.user)
        if made is None:
            latest = selectors.latest_checkpoint()
            if latest is None:
                raise DomainError("The log is empty: nothing to checkpoint.")
            return Response(CheckpointSerializer(latest).data, status=status.HTTP_200_OK)
        return Response(CheckpointSerializer(made).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "from", OpenApiTypes.INT, required=True, description="older tree size"
            ),
            OpenApiParameter(
                "to", OpenApiTypes.INT, description="newer tree size (default: current)"
            ),
        ],
        responses=ConsistencyProofSerializer,
    )
    @action(detail=False, methods=["get"], pagination_class=None)
    def consistency(self, request: Request) -> Response:
        """RFC 9162 consistency proof: the tree of size `to` extends the tree of size `from`."""
        first = _int_param(request, "from", required=True)
        assert first is not None
        return Response(selectors.consistency_proof(first, _int_param(request, "to")))


class PublicKeysView(APIView):
    """Every key that ever signed the log (public halves), for anyone who wants to verify."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(responses=SigningKeySerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(
            SigningKeySerializer(SigningKey.objects.order_by("created_at"), many=True).data
        )


# --- waivers --------------------------------------------------------------------------------

WAIVER_REFERENCE = OpenApiParameter(
    "reference", str, OpenApiParameter.PATH, description="WV-YYYY-NNNN, or the waiver's UUID"
)


def _named(field: str, lookup: Callable[[], Any]) -> Any:
    """Run a lookup from the body, so that its failure names the body's ``field`` (as a 400)."""
    try:
        return lookup()
    except DomainError as exc:
        raise DomainError(exc.message, field=field) from exc


def _waiver_owner(username: str, tenant: Tenant) -> User:
    owner = User.objects.filter(username=username).first()
    if owner is None:  # worded as the service words a non-member: no probing for usernames
        raise DomainError(f"{username} is not an active member of {tenant.slug}.", field="owner")
    return owner


def _waiver_artifact(text: str, user: Any) -> Artifact:
    ref = registry_selectors.parse(text)
    if ref.class_slug is None or ref.tenant is None or ref.version is not None:
        raise DomainError(f"Name each artifact as class/tenant/slug, not '{text}'.")
    return registry_selectors.artifact_by_path(
        ref.class_slug, ref.tenant, ref.slug, visible_to=user
    )


class WaiverViewSet(viewsets.GenericViewSet):
    """Waivers of your tenants: list by state (expiring soon first), grant, renew, revoke, countersign.

    A waiver's terms never change: renewing makes a new waiver linked to the old one.
    Another tenant's waiver answers 404, as if it did not exist.
    """

    lookup_field = "reference"
    lookup_value_regex = "[^/]+"
    serializer_class = WaiverSerializer
    filter_backends: list[Any] = []
    queryset = Waiver.objects.none()

    def get_queryset(self) -> QuerySet[Waiver]:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Waiver.objects.none()
        return governance_selectors.waivers_visible_to(self.request.user).select_related("renewal")

    def _waiver(self, reference: str) -> Waiver:
        return governance_selectors.waiver_by_reference(reference, visible_to=self.request.user)

    def _answer(self, waiver: Waiver, code: int = status.HTTP_200_OK) -> Response:
        """The waiver as it stands after a service call (re-read: services work on a locked copy)."""
        fresh = self.get_queryset().get(pk=waiver.pk)
        context = {"now": timezone.now(), "user": self.request.user}
        return Response(WaiverDetailSerializer(fresh, context=context).data, code)

    @extend_schema(parameters=[WaiverQuerySerializer], responses=WaiverSerializer(many=True))
    def list(self, request: Request) -> Response:
        # An empty parameter (a form's "any") filters nothing, as in the other lists.
        params = {k: v for k, v in request.query_params.items() if v != ""}
        query = WaiverQuerySerializer(data=params)
        query.is_valid(raise_exception=True)
        now = timezone.now()
        rows = waivers_matching(self.get_queryset(), now, **query.validated_data)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(
            WaiverSerializer(page, many=True, context={"now": now}).data
        )

    @extend_schema(request=WaiverGrantSerializer, responses={201: WaiverDetailSerializer})
    def create(self, request: Request) -> Response:
        """Grant a waiver (administrators; a security check also needs a security officer's countersignature)."""
        body = WaiverGrantSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        user = request.user
        tenant = tenant_for_user(user, data["tenant"])
        change = (
            _named("change", lambda: change_by_reference(data["change"], visible_to=user))
            if data["change"]
            else None
        )
        artifacts = [
            _named("artifacts", partial(_waiver_artifact, t, user)) for t in data["artifacts"]
        ]
        try:
            waiver = waiver_grant(
                tenant=tenant,
                actor=cast(User, user),
                check_kind=data["check"],
                metric=data["metric"],
                change=change,
                artifacts=artifacts,
                owner=_waiver_owner(data["owner"], tenant),
                justification=data["justification"],
                mitigation=data["mitigation"],
                advisory_links=data["advisory_links"],
                expires_at=data["expires_at"],
            )
        except DomainError as exc:
            if exc.field == "check_kind":  # the service's name for this body's "check"
                exc.field = "check"
            raise
        return self._answer(waiver, status.HTTP_201_CREATED)

    @extend_schema(parameters=[WAIVER_REFERENCE], responses=WaiverDetailSerializer)
    def retrieve(self, request: Request, reference: str) -> Response:
        waiver = self._waiver(reference)
        context = {"now": timezone.now(), "user": request.user}
        return Response(WaiverDetailSerializer(waiver, context=context).data)

    @extend_schema(
        parameters=[WAIVER_REFERENCE],
        request=WaiverRenewSerializer,
        responses={201: WaiverDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def renew(self, request: Request, reference: str) -> Response:
        """Renew: a new waiver with the same scope, linked to this one (the answer is the new one)."""
        waiver = self._waiver(reference)
        body = WaiverRenewSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        renewal = waiver_renew(
            waiver=waiver,
            actor=cast(User, request.user),
            expires_at=data["expires_at"],
            justification=data.get("justification"),
            mitigation=data.get("mitigation"),
            advisory_links=data.get("advisory_links"),
        )
        return self._answer(renewal, status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[WAIVER_REFERENCE],
        request=WaiverRevokeSerializer,
        responses=WaiverDetailSerializer,
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, reference: str) -> Response:
        """End a waiver now (administrators and security officers); what it covered blocks again."""
        waiver = self._waiver(reference)
        body = WaiverRevokeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        waiver = waiver_revoke(
            waiver=waiver, actor=cast(User, request.user), reason=body.validated_data["reason"]
        )
        return self._answer(waiver)

    @extend_schema(parameters=[WAIVER_REFERENCE], request=None, responses=WaiverDetailSerializer)
    @action(detail=True, methods=["post"])
    def countersign(self, request: Request, reference: str) -> Response:
        """A security officer's agreement to a waiver of a security check; until then it does not count."""
        waiver = waiver_countersign(waiver=self._waiver(reference), actor=cast(User, request.user))
        return self._answer(waiver)


@extend_schema(exclude=True)
class UnknownWaiverAction(APIView):
    """Any other ``waivers/{reference}/{action}/``: a JSON 404 naming the action."""

    def _refuse(self, request: Request, reference: str, action: str) -> Response:
        raise NotFound(
            f"No action '{action}' on waivers; use renew, revoke or countersign.", field="action"
        )

    get = post = put = patch = delete = _refuse
