"""Management endpoints of rollouts: the list, one rollout, creating one and its actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.kernel.errors import NotFound
from reviews import selectors as reviews_selectors
from rollouts import selectors, services
from rollouts.api.serializers import (
    RolloutActionSerializer,
    RolloutCreateSerializer,
    RolloutDetailSerializer,
    RolloutFlagSerializer,
    RolloutReasonedActionSerializer,
    RolloutRowSerializer,
)
from rollouts.api.views.common import (
    ACTIONS,
    NUMBER,
    actor,
    field_renamed,
    rollout_detail,
)
from rollouts.filtersets import RolloutFilterSet
from rollouts.models import Rollout


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
        with field_renamed("change"):
            change = reviews_selectors.change_by_reference(data["change"], visible_to=request.user)
        rollout = services.rollout_create(
            change=change,
            actor=actor(request),
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
                actor=actor(request),
                revision=rollout.revision,
                reason=data["reason"],
            )
        return rollout_detail(rollout, request.user, status.HTTP_201_CREATED)

    @extend_schema(parameters=[NUMBER], responses=RolloutDetailSerializer)
    def retrieve(self, request: Request, number: str) -> Response:
        return rollout_detail(selectors.rollout_by_number(request.user, number), request.user)

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
        done = service(rollout=rollout, actor=actor(request), **data, **extra)
        return rollout_detail(done, request.user)

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
