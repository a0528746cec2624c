"""REST endpoints of the event log (waivers: ``reviews.waivers.api``). Thin: selectors read, services write."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.api.serializers import (
    CheckpointSerializer,
    ConsistencyProofSerializer,
    EventDetailSerializer,
    EventSerializer,
    InclusionProofSerializer,
    SigningKeySerializer,
    VerificationRunSerializer,
)
from governance.filtersets import EventFilterSet
from governance.kernel.errors import DomainError, NotFound
from governance.kernel.events import selectors
from governance.kernel.events.models import Checkpoint, Event, SigningKey, VerificationRun
from governance.kernel.events.services import checkpoint_create, verification_start


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


class EventViewSet(viewsets.ReadOnlyModelViewSet[Event]):
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


class VerificationRunViewSet(viewsets.ReadOnlyModelViewSet[VerificationRun]):
    """Verification runs with their progress: the caller's own, or all for a platform administrator."""

    serializer_class = VerificationRunSerializer
    queryset = VerificationRun.objects.none()
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[VerificationRun]:
        """The caller's own runs (every run for a platform administrator); others answer 404."""
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return VerificationRun.objects.none()
        return selectors.verification_runs_visible_to(self.request.user)


class CheckpointViewSet(viewsets.GenericViewSet[Checkpoint]):
    """Signed tree heads, newest first, and consistency proofs between them."""

    serializer_class = CheckpointSerializer
    queryset = Checkpoint.objects.all()
    pagination_class = CheckpointPages
    filter_backends: list[Any] = []

    def list(self, _request: Request) -> Response:
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
    def get(self, _request: Request) -> Response:
        return Response(
            SigningKeySerializer(SigningKey.objects.order_by("created_at"), many=True).data
        )
