"""Shapes of the runtime API: the resolve request and answer, and the signed snapshot (for the schema)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from rollouts.choices import Arm, Reason


class ResolveRequestSerializer(serializers.Serializer):
    """One slot of a tenant's application, for one subject, optionally pinned."""

    tenant = serializers.SlugField(max_length=63, help_text="The tenant the answer is for.")
    application = serializers.SlugField(max_length=100)
    slot = serializers.RegexField(
        r"^[A-Za-z][A-Za-z0-9_-]{0,99}$", max_length=100, help_text="The slot's name."
    )
    subject = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=1000,
        trim_whitespace=False,
        help_text="Who the answer is for (a user or session id): decides the canary bucket. "
        "Without one, a canary serves the stable version (never random).",
    )
    pin = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=300,
        help_text="A version ('1.2.0') or 'slug:version#sha256' to serve instead (STATIC), "
        "if it may serve.",
    )

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Send a JSON object."]})
        return super().to_internal_value(data)


class AnswerSerializer(serializers.Serializer):
    """What a slot serves, and why (the same fields for the snapshot's client-side resolve)."""

    tenant = serializers.CharField()
    application = serializers.CharField()
    slot = serializers.CharField()
    ref = serializers.CharField(allow_null=True, help_text="slug:version#sha256")
    path = serializers.CharField(allow_null=True, help_text="class/tenant/slug/version")
    version = serializers.CharField(allow_null=True)
    sha256 = serializers.CharField(allow_null=True, help_text="The version's manifest SHA-256.")
    stage = serializers.CharField(allow_null=True)
    content_kind = serializers.CharField(allow_null=True)
    content = serializers.JSONField(allow_null=True, help_text="Text, JSON, or null for files.")
    reason = serializers.ChoiceField(choices=Reason.choices)
    variant = serializers.CharField(
        help_text="pinned, canary, stable, on, override, default or disabled"
    )
    rollout = serializers.CharField(allow_null=True, help_text="RO-<number>")
    rollout_id = serializers.UUIDField(allow_null=True)
    step = serializers.IntegerField(allow_null=True)
    arm = serializers.ChoiceField(choices=Arm.choices, allow_null=True)
    bucket = serializers.IntegerField(allow_null=True, help_text="0..99,999")
    sequence = serializers.IntegerField(help_text="The event log's size the answer reflects.")
    warnings = serializers.ListField(child=serializers.CharField())


class SignatureSerializer(serializers.Serializer):
    algorithm = serializers.CharField(help_text="ed25519")
    key_id = serializers.CharField(help_text="A key of GET /api/v1/keys/")
    signed = serializers.CharField(help_text="sha256(rfc8785(snapshot))")
    value = serializers.CharField(help_text="hex Ed25519 signature of the 32-byte hash")


class RuntimeDocumentSerializer(serializers.Serializer):
    """The signed runtime configuration (``snapshot`` is the signed body)."""

    sha256 = serializers.CharField(help_text="SHA-256 of the RFC 8785 bytes of 'snapshot'.")
    signature = SignatureSerializer()
    snapshot = serializers.JSONField(
        help_text="format, tenant, application, application_tenant, sequence, buckets, "
        "slots{name: artifact, disabled, default, override, rules[], warnings[]}, "
        "versions{ref: path, version, sha256, stage, content_kind, content, content_sha256, warning}"
    )
