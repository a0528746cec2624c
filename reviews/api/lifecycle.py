"""The stage criteria endpoint: ``/api/v1/lifecycle-policies/<tenant>/`` (GET the criteria in
force and the tenant's versions; PUT a new version, administrators)."""

from __future__ import annotations

from typing import Any, cast

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Tenant, User
from accounts.selectors import tenant_for_user
from reviews import services
from reviews.api.serializers import NumberField
from reviews.lifecycle import selectors as lifecycle_selectors
from reviews.lifecycle.policy import MAX_RECERTIFY_DAYS

#: How many of a tenant's own versions the endpoint lists.
HISTORY_LIMIT = 50
CRITERIA_HELP = (
    'The criteria document: {"<class slug or *>": {"<stage>": ["<criterion key>", ...]}}; '
    "stages draft, evaluated, approved, active (active's are watched, never required). A "
    "class's own entry wins over *, stage by stage; a stage no entry names keeps the "
    "built-in table's criteria."
)


class LifecyclePolicyUpdateSerializer(serializers.Serializer[Any]):
    criteria = serializers.JSONField(help_text=CRITERIA_HELP)
    enforced = serializers.BooleanField(
        required=False,
        help_text="false: advisory (checklists shown, nothing refused). Default: as in force.",
    )
    reproducibility_tolerance = NumberField(
        required=False,
        help_text="Two runs with the same seed and RNG agree when every shared metric differs "
        "by at most this much. Default: as in force.",
    )
    recertify_within_days = serializers.IntegerField(
        required=False,
        help_text=f"1 to {MAX_RECERTIFY_DAYS}: days an emergency change's versions have to be "
        "re-certified. Default: as in force.",
    )
    reason = serializers.CharField(max_length=500)


class LifecyclePolicyRowSerializer(serializers.Serializer[Any]):
    number = serializers.IntegerField()
    criteria = serializers.JSONField()
    enforced = serializers.BooleanField()
    reproducibility_tolerance = serializers.FloatField()
    recertify_within_days = serializers.IntegerField()
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)


class LifecyclePolicySerializer(serializers.Serializer[Any]):
    """The stage criteria in force for a tenant, and the tenant's own versions of them."""

    tenant = serializers.CharField()
    number = serializers.SerializerMethodField()
    scope = serializers.ChoiceField(
        choices=[("tenant", "tenant"), ("default", "default"), ("built-in", "built-in")],
        help_text="tenant: its own criteria; default: the platform default's; built-in: the "
        "seed's table (neither exists).",
    )
    enforced = serializers.BooleanField()
    reproducibility_tolerance = serializers.FloatField()
    recertify_within_days = serializers.IntegerField()
    criteria = serializers.JSONField(help_text=CRITERIA_HELP)
    reason = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField(allow_null=True)
    created_by = serializers.CharField(allow_null=True)
    history = LifecyclePolicyRowSerializer(
        many=True, help_text="The tenant's own versions, newest first."
    )

    @extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string", "enum": ["built-in"]}]})
    def get_number(self, obj: dict[str, Any]) -> int | str:
        number: int | str = obj["number"]
        return number


def lifecycle_policy_body(tenant: Tenant) -> dict[str, Any]:
    """What GET (and a PUT) answers: the criteria in force and the tenant's versions."""
    current = lifecycle_selectors.policy_in_force(tenant)
    row = current.row
    return dict(
        LifecyclePolicySerializer(
            {
                "tenant": tenant.slug,
                "number": row.number if row else "built-in",
                "scope": current.scope,
                "enforced": current.enforced,
                "reproducibility_tolerance": current.reproducibility_tolerance,
                "recertify_within_days": current.recertify_within_days,
                "criteria": current.document,
                "reason": row.reason if row else None,
                "created_at": row.created_at if row else None,
                "created_by": row.created_by.username if row and row.created_by else None,
                "history": list(lifecycle_selectors.policy_history(tenant)[:HISTORY_LIMIT]),
            }
        ).data
    )


class LifecyclePolicyView(APIView):
    """What each lifecycle stage asks of a tenant's versions: the criteria in force and their versions."""

    @extend_schema(responses=LifecyclePolicySerializer)
    def get(self, request: Request, tenant: str) -> Response:
        return Response(lifecycle_policy_body(tenant_for_user(request.user, tenant)))

    @extend_schema(request=LifecyclePolicyUpdateSerializer, responses=LifecyclePolicySerializer)
    def put(self, request: Request, tenant: str) -> Response:
        """Save a new version of the tenant's stage criteria (administrators)."""
        found = tenant_for_user(request.user, tenant)
        body = LifecyclePolicyUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        current = lifecycle_selectors.policy_in_force(found)
        services.lifecycle_policy_set(
            tenant=found,
            criteria=data["criteria"],
            enforced=data.get("enforced", current.enforced),
            reproducibility_tolerance=data.get(
                "reproducibility_tolerance", current.reproducibility_tolerance
            ),
            recertify_within_days=data.get("recertify_within_days", current.recertify_within_days),
            reason=data["reason"],
            actor=cast(User, request.user),
        )
        return Response(lifecycle_policy_body(found))
