"""``POST /api/v1/telemetry/``: services send counters (service token with ``telemetry:write``).

Thin: the body goes to ``telemetry_ingest`` as parsed JSON (the service checks every row;
a DRF serializer per row would cost more than the whole ingest). The serializers here only
document the body and the answer in the OpenAPI schema.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import ServicePrincipal, ServiceTokenAuthentication, require_scope
from accounts.choices import TokenScope
from governance.kernel.errors import DomainError
from rollouts.telemetry import LATENCY_BOUNDS_MS
from rollouts.telemetry_services import telemetry_ingest

_BOUNDS = ", ".join(str(int(b)) if b != float("inf") else "+inf" for b in LATENCY_BOUNDS_MS)


class TelemetryRowSerializer(serializers.Serializer[Any]):
    """One counter row (documentation only; ``telemetry_ingest`` checks it)."""

    application = serializers.CharField(help_text="Application slug, e.g. sales-agent.")
    slot = serializers.CharField(help_text="Slot name, e.g. qualifyLead.")
    version = serializers.CharField(
        help_text="The version string served (the resolve answer's `version`), e.g. 1.2.0."
    )
    rollout = serializers.CharField(
        required=False, allow_null=True, help_text="RO-<n> from the resolve answer, if any."
    )
    arm = serializers.ChoiceField(
        choices=["canary", "stable", ""],
        required=False,
        allow_null=True,
        help_text="The resolve answer's arm; required with a rollout, empty without.",
    )
    bucket_start = serializers.DateTimeField(
        help_text="Start of the bucket (with a zone); aligned down to TELEMETRY_BUCKET_SECONDS."
    )
    requests = serializers.IntegerField(min_value=0)
    refusals = serializers.IntegerField(min_value=0, required=False, help_text="<= requests")
    policy_violations = serializers.IntegerField(
        min_value=0, required=False, help_text="<= requests"
    )
    latency_slo_breaches = serializers.IntegerField(
        min_value=0, required=False, help_text="<= requests"
    )
    latency_ms = serializers.ListField(
        child=serializers.IntegerField(min_value=0),
        min_length=len(LATENCY_BOUNDS_MS),
        max_length=len(LATENCY_BOUNDS_MS),
        required=False,
        help_text=(
            f"Requests per latency bucket, upper bounds in ms: {_BOUNDS}. "
            "Its sum must equal requests."
        ),
    )
    cost = serializers.FloatField(min_value=0, required=False, help_text="Currency units.")
    quality_sum = serializers.FloatField(required=False)
    quality_sumsq = serializers.FloatField(min_value=0, required=False)
    quality_n = serializers.IntegerField(min_value=0, required=False, help_text="<= requests")
    snapshot_sequence = serializers.IntegerField(
        min_value=0, required=False, help_text="The runtime snapshot sequence served from."
    )
    manifest_sha256 = serializers.RegexField(
        r"^[0-9a-fA-F]{64}$",
        required=False,
        allow_blank=True,
        help_text=(
            "Optional: the manifest SHA-256 of what the client actually ran (the resolve "
            "answer's `sha256`, or the hash of the bundle it loaded). A hash that differs from "
            "the named version's approved hash is deployment drift: the artifact's owner is "
            "alerted once per episode (docs/rollouts.md)."
        ),
    )

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        # "errors" is a Serializer property, so it cannot be a class attribute here.
        fields = super().get_fields()
        fields["errors"] = serializers.IntegerField(
            min_value=0, required=False, help_text="<= requests"
        )
        return fields


class TelemetryBatchSerializer(serializers.Serializer[Any]):
    batch_id = serializers.CharField(
        max_length=100, help_text="Chosen by the client, reused on retry: a batch counts once."
    )
    rows = TelemetryRowSerializer(many=True, help_text="At most TELEMETRY_MAX_BATCH_ROWS rows.")


class TelemetryResultSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=["accepted", "duplicate"])
    batch_id = serializers.CharField()
    rows = serializers.IntegerField()
    requests = serializers.IntegerField()
    rollouts = serializers.ListField(child=serializers.CharField())


class _ErrorBody(serializers.Serializer[Any]):
    code = serializers.CharField()
    message = serializers.CharField()
    field = serializers.CharField(allow_null=True, help_text="e.g. rows[3].errors")


class TelemetryErrorSerializer(serializers.Serializer[Any]):
    error = _ErrorBody()


class TelemetryView(APIView):
    """Counters in: one batch per request, stored whole or refused whole."""

    authentication_classes = [ServiceTokenAuthentication]
    permission_classes = [require_scope(TokenScope.TELEMETRY_WRITE)]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]

    @extend_schema(
        operation_id="telemetry_ingest",
        summary="Send a batch of telemetry counters",
        description=(
            "Counters per tenant (the token's), application, slot, version, rollout and arm, "
            "per time bucket. A bad row refuses the whole batch with 400 naming the field "
            "(`rows[3].errors`); nothing of it is stored. A `batch_id` sent before answers "
            "200 with status `duplicate` and counts once."
        ),
        request=TelemetryBatchSerializer,
        responses={
            201: OpenApiResponse(TelemetryResultSerializer, description="Stored."),
            200: OpenApiResponse(
                TelemetryResultSerializer, description="Duplicate: stored before, not again."
            ),
            400: OpenApiResponse(TelemetryErrorSerializer, description="A bad row or batch."),
            401: OpenApiResponse(TelemetryErrorSerializer, description="No service token."),
            403: OpenApiResponse(
                TelemetryErrorSerializer, description="The token lacks telemetry:write."
            ),
        },
        examples=[
            OpenApiExample(
                "One row",
                request_only=True,
                value={
                    "batch_id": "sales-agent-7f3a-000042",
                    "rows": [
                        {
                            "application": "sales-agent",
                            "slot": "qualifyLead",
                            "version": "1.2.0",
                            "rollout": "RO-3",
                            "arm": "canary",
                            "bucket_start": "2026-01-31T12:00:00Z",
                            "requests": 120,
                            "errors": 2,
                            "latency_ms": [40, 50, 20, 6, 2, 1, 1, 0, 0],
                            "cost": 0.36,
                            "quality_sum": 102.5,
                            "quality_sumsq": 88.1,
                            "quality_n": 120,
                            "snapshot_sequence": 17,
                            "manifest_sha256": "9f2c" + "0" * 60,
                        }
                    ],
                },
            )
        ],
        tags=["telemetry"],
    )
    def post(self, request: Request) -> Response:
        principal = request.user
        assert isinstance(principal, ServicePrincipal)  # the permission class made sure
        body = request.data
        if not isinstance(body, dict):
            raise DomainError("The body must be a JSON object with batch_id and rows.", field="")
        result = telemetry_ingest(
            principal_or_tenant=principal, batch_id=body.get("batch_id"), rows=body.get("rows")
        )
        code = status.HTTP_201_CREATED if result.status == "accepted" else status.HTTP_200_OK
        return Response(result.as_json(), status=code)
