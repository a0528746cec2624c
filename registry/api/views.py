"""REST endpoints of the registry. Thin: selectors read, services write, errors are DomainErrors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from typing_extensions import override

from accounts.models import User
from accounts.selectors import is_platform_admin, tenant_for_user
from governance.kernel.errors import Conflict, DomainError, Forbidden
from registry import selectors, services
from registry.api.serializers import (
    ActionEligibleSetSerializer,
    ArtifactClassSerializer,
    ArtifactCreateSerializer,
    ArtifactSerializer,
    DeprecateSerializer,
    DeputySetSerializer,
    DescribeSerializer,
    OwnerSetSerializer,
    PublishSerializer,
    RetireSerializer,
    SafetySwitchReasonSerializer,
    SafetySwitchStateSerializer,
    VersionDetailSerializer,
    VersionSummarySerializer,
)
from registry.diffs import version_diff
from registry.filtersets import ArtifactFilterSet
from registry.models import Artifact, ArtifactClass, Version
from registry.selectors import LIFECYCLE_RELATED

#: The versions an artifact row shows, each with its deprecation and retirement.
ARTIFACT_VERSIONS = ("recommended_version", "active_version")


def _version_at(request: Request, cls: str, tenant: str, slug: str, version: str) -> Version:
    return selectors.version_by_reference(
        f"{cls}/{tenant}/{slug}/{version}", visible_to=request.user
    )


@contextmanager
def _fields_renamed(names: dict[str, str]) -> Iterator[None]:
    """Name the body's field in a service's error where the service calls it something else."""
    try:
        yield
    except DomainError as exc:
        if exc.field in names:
            exc.field = names[exc.field]
        raise


class ArtifactClassList(generics.ListCreateAPIView[ArtifactClass]):
    """Artifact classes; platform administrators add new ones without code."""

    serializer_class = ArtifactClassSerializer
    queryset = ArtifactClass.objects.all()
    pagination_class = None

    @override
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = ArtifactClassSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        made = services.artifact_class_create(actor=cast(User, request.user), **body.validated_data)
        return Response(ArtifactClassSerializer(made).data, status=status.HTTP_201_CREATED)


class ArtifactList(generics.ListAPIView[Artifact]):
    """Artifacts of your tenants: filter by class, tenant, owner, and text (`q`)."""

    serializer_class = ArtifactSerializer
    filterset_class = ArtifactFilterSet

    def get_queryset(self) -> QuerySet[Artifact]:
        if getattr(self, "swagger_fake_view", False):
            return Artifact.objects.none()
        return selectors.artifacts_visible_to(self.request.user).select_related(
            *(f"{which}__{path}" for which in ARTIFACT_VERSIONS for path in LIFECYCLE_RELATED)
        )

    @extend_schema(request=ArtifactCreateSerializer, responses={201: ArtifactSerializer})
    def post(self, request: Request) -> Response:
        body = ArtifactCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        tenant = tenant_for_user(request.user, data["tenant"])
        owner = None
        if data["owner"]:
            owner = User.objects.filter(username=data["owner"]).first()
            if owner is None:  # worded as the service words a non-member: no probing for usernames
                raise DomainError(
                    f"The owner '{data['owner']}' is not a member of '{tenant.slug}'.",
                    field="owner",
                )
        artifact = services.artifact_create(
            artifact_class=selectors.artifact_class_by_slug(data["artifact_class"]),
            tenant=tenant,
            slug=data["slug"],
            title=data["title"],
            summary=data["summary"],
            license_id=data["license"],
            owner=owner,
            actor=cast(User, request.user),
        )
        return Response(ArtifactSerializer(artifact).data, status=status.HTTP_201_CREATED)


class ArtifactDetail(APIView):
    """One artifact: purpose, owner, recommended version."""

    @extend_schema(responses=ArtifactSerializer)
    def get(self, request: Request, cls: str, tenant: str, slug: str) -> Response:
        artifact = selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
        return Response(ArtifactSerializer(artifact).data)


class VersionList(generics.GenericAPIView[Version]):
    """Versions of an artifact, newest first; POST publishes a new one (any member of the tenant)."""

    serializer_class = VersionSummarySerializer
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    filter_backends: list[Any] = []

    @extend_schema(responses=VersionSummarySerializer(many=True))
    def get(self, request: Request, cls: str, tenant: str, slug: str) -> Response:
        artifact = selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
        page = self.paginate_queryset(
            selectors.versions_of(artifact).select_related(*LIFECYCLE_RELATED)
        )
        return self.get_paginated_response(VersionSummarySerializer(page, many=True).data)

    @extend_schema(
        request=PublishSerializer,
        responses={201: VersionDetailSerializer, 200: VersionDetailSerializer},
    )
    def post(self, request: Request, cls: str, tenant: str, slug: str) -> Response:
        artifact = selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
        body = PublishSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        upload = data.get("file")
        raw = data.get("content")
        content = services.Content(
            text=raw if isinstance(raw, str) else None,
            data=raw if not isinstance(raw, str) else None,
            file_bytes=upload.read() if upload is not None else None,
            file_name=getattr(upload, "name", "") or "",
        )
        version, created = services.version_publish(
            artifact=artifact,
            content=content,
            impact=data["impact"],
            reason=data["reason"],
            version=data["version"],
            input_variables=data["input_variables"],
            metadata=data["metadata"],
            dependencies=data["dependencies"],
            actor=cast(User, request.user),
        )
        return Response(
            VersionDetailSerializer(version).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class VersionDetail(APIView):
    """One version: content, signed manifest, signature status, lineage. Versions never change (no PUT/PATCH/DELETE)."""

    @extend_schema(responses=VersionDetailSerializer)
    def get(self, request: Request, cls: str, tenant: str, slug: str, version: str) -> Response:
        found = selectors.version_by_reference(
            f"{cls}/{tenant}/{slug}/{version}", visible_to=request.user
        )
        return Response(VersionDetailSerializer(found).data)


class VersionDeprecate(APIView):
    """Deprecate a version (administrators): its replacement, why, and when it stops resolving.

    It keeps resolving until the grace period ends; then the scheduled sweep removes it
    from resolution (the record stays). Refused while active versions depend on it,
    unless `override_reason` says why.
    """

    @extend_schema(request=DeprecateSerializer, responses=VersionDetailSerializer)
    def post(self, request: Request, cls: str, tenant: str, slug: str, version: str) -> Response:
        found = _version_at(request, cls, tenant, slug, version)
        body = DeprecateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        replacement = data["replacement"]
        if "/" not in replacement and "@" not in replacement and ":" not in replacement:
            replacement = f"{found.artifact.path}/{replacement}"  # a version of this artifact
        with _fields_renamed({"remove_after": "remove_after_days"}):
            services.version_deprecate(
                version=found,
                replacement=replacement,
                reason=data["reason"],
                remove_after_days=data["remove_after_days"],
                override_reason=data["override_reason"],
                actor=cast(User, request.user),
            )
        return Response(
            VersionDetailSerializer(_version_at(request, cls, tenant, slug, version)).data
        )


class VersionRetire(APIView):
    """Retire a version to simulation-only (administrators), with a sunset rationale."""

    @extend_schema(request=RetireSerializer, responses=VersionDetailSerializer)
    def post(self, request: Request, cls: str, tenant: str, slug: str, version: str) -> Response:
        found = _version_at(request, cls, tenant, slug, version)
        body = RetireSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.version_retire(
            version=found,
            rationale=body.validated_data["rationale"],
            actor=cast(User, request.user),
        )
        return Response(
            VersionDetailSerializer(_version_at(request, cls, tenant, slug, version)).data
        )


class ArtifactOwner(APIView):
    """Hand an artifact to a new owner (its owner or an administrator); the change is logged."""

    @extend_schema(request=OwnerSetSerializer, responses=ArtifactSerializer)
    def post(self, request: Request, cls: str, tenant: str, slug: str) -> Response:
        artifact = selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
        body = OwnerSetSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        owner = User.objects.filter(username=data["owner"]).first()
        if owner is None:  # worded as the service words a non-member: no probing for usernames
            raise DomainError(
                f"{data['owner']} is not an active member of {artifact.tenant.slug}.",
                field="owner",
            )
        services.artifact_owner_set(
            artifact=artifact, owner=owner, reason=data["reason"], actor=cast(User, request.user)
        )
        fresh = selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
        return Response(ArtifactSerializer(fresh).data)


class ArtifactDescribe(APIView):
    """Change an artifact's title and summary (its owner or an administrator); logged with what
    they said before. A field left out is kept; nothing changed is 409."""

    @extend_schema(request=DescribeSerializer, responses=ArtifactSerializer)
    def post(self, request: Request, cls: str, tenant: str, slug: str) -> Response:
        artifact = selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
        body = DescribeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        services.artifact_describe(
            artifact=artifact,
            title=data.get("title", artifact.title),
            summary=data.get("summary", artifact.summary),
            actor=cast(User, request.user),
        )
        fresh = selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
        return Response(ArtifactSerializer(fresh).data)


class ArtifactActionEligible(APIView):
    """Mark an artifact action-eligible or not (its tenant's administrators, with a reason; logged)."""

    @extend_schema(request=ActionEligibleSetSerializer, responses=ArtifactSerializer)
    def post(self, request: Request, cls: str, tenant: str, slug: str) -> Response:
        artifact = selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
        body = ActionEligibleSetSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        services.artifact_action_eligible_set(
            artifact=artifact,
            value=data["value"],
            reason=data["reason"],
            actor=cast(User, request.user),
        )
        fresh = selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
        return Response(ArtifactSerializer(fresh).data)


class ArtifactDeputy(APIView):
    """Name the owner's deputy, or none (the owner or an administrator; logged)."""

    @extend_schema(request=DeputySetSerializer, responses=ArtifactSerializer)
    def post(self, request: Request, cls: str, tenant: str, slug: str) -> Response:
        artifact = selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
        body = DeputySetSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        name = body.validated_data["deputy"]
        deputy = None
        if name:
            deputy = User.objects.filter(username=name).first()
            if deputy is None:  # worded as the service words a non-member: no probing
                raise DomainError(
                    f"{name} is not an active member of {artifact.tenant.slug}.", field="deputy"
                )
        services.artifact_deputy_set(
            artifact=artifact, deputy=deputy, actor=cast(User, request.user)
        )
        fresh = selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
        return Response(ArtifactSerializer(fresh).data)


def _switch_state(artifact: Artifact) -> dict[str, Any]:
    return {
        "artifact": artifact.path,
        "action_eligible": artifact.action_eligible,
        "engaged": (halted := selectors.halted_reason(artifact)) is not None,
        "halted": halted,
        "history": selectors.safety_switch_history(artifact),
    }


class ArtifactSafetySwitch(APIView):
    """An action-eligible artifact's safety switch: while engaged, no resolution names any of
    its versions (the runtime, POST /api/v1/resolve/ and OFREP answer "halted"; GET
    /api/v1/resolve/?ref= without a version answers 409); its active version is kept.

    POST .../engage/ or .../release/ with a reason: its tenant's administrators; logged.
    Deactivation (the reviews API) is the other switch: it removes the active version.
    """

    @extend_schema(responses=SafetySwitchStateSerializer)
    def get(self, request: Request, cls: str, tenant: str, slug: str) -> Response:
        artifact = selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
        return Response(SafetySwitchStateSerializer(_switch_state(artifact)).data)


class ArtifactSafetySwitchFlip(APIView):
    """Engage (halt) or release an action-eligible artifact's safety switch, with a reason."""

    action = "engage"

    @extend_schema(request=SafetySwitchReasonSerializer, responses=SafetySwitchStateSerializer)
    def post(self, request: Request, cls: str, tenant: str, slug: str) -> Response:
        artifact = selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
        body = SafetySwitchReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        flip = (
            services.safety_switch_engage
            if self.action == "engage"
            else services.safety_switch_release
        )
        flip(
            artifact=artifact, reason=body.validated_data["reason"], actor=cast(User, request.user)
        )
        fresh = selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
        return Response(SafetySwitchStateSerializer(_switch_state(fresh)).data)


class VersionDiff(APIView):
    """Differences between this version and `against` (another version of the same artifact, or any reference)."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "against", str, required=True, description="version number or reference"
            )
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request, cls: str, tenant: str, slug: str, version: str) -> Response:
        right = selectors.version_by_reference(
            f"{cls}/{tenant}/{slug}/{version}", visible_to=request.user
        )
        against = request.query_params.get("against", "")
        if not against:
            raise DomainError(
                "'against' is required: a version number or a reference.", field="against"
            )
        ref = (
            f"{cls}/{tenant}/{slug}/{against}"
            if "/" not in against and "@" not in against and ":" not in against
            else against
        )
        left = selectors.version_by_reference(ref, tenant=tenant, visible_to=request.user)
        return Response(version_diff(left, right).as_json())


class Resolve(APIView):
    """Resolve any reference form to one version (one indexed query), saying its stage and whether it is active.

    Without a version number, the artifact's active version: 404 "no active version" when
    nothing is active, 409 "halted: ..." while the artifact's safety switch is engaged. Any other version (a draft, an approved one, one rolled back) only
    by its exact number.
    """

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "ref",
                str,
                required=True,
                description="class/tenant/slug[/version], slug@version or slug:version#sha256; "
                "without a version, the active version",
            ),
            OpenApiParameter("tenant", str, description="context for short forms"),
        ],
        responses=VersionSummarySerializer,
    )
    def get(self, request: Request) -> Response:
        ref = request.query_params.get("ref", "")
        if not ref:
            raise DomainError("'ref' is required.", field="ref")
        parsed = selectors.parse(ref, tenant=request.query_params.get("tenant") or None)
        found: Version = selectors.version_by_reference(
            parsed, tenant=request.query_params.get("tenant") or None, visible_to=request.user
        )
        if not parsed.version:
            # The active version of a halted artifact is kept but named to no one (fail closed).
            halted = selectors.halted_reason(found.artifact)
            if halted is not None:
                raise Conflict(halted, field="ref")
        return Response(VersionSummarySerializer(found).data)


def require_platform_admin(user: Any) -> None:
    if not is_platform_admin(user):
        raise Forbidden("Only a platform administrator can do this.")
