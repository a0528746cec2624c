"""Shapes of the runtime API: the resolve request and answer, and the signed snapshot (for the schema)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rest_framework import serializers

from governance.errors import DomainError
from rollouts.choices import Arm, Reason
from rollouts.models import APP_SLUG_RE, SLOT_NAME_RE

_TENANT = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_APPLICATION = re.compile(APP_SLUG_RE)
_SLOT = re.compile(SLOT_NAME_RE)
#: field -> (required, pattern or None, max length)
_RESOLVE_FIELDS: dict[str, tuple[bool, re.Pattern[str] | None, int]] = {
    "tenant": (True, _TENANT, 63),
    "application": (True, _APPLICATION, 100),
    "slot": (True, _SLOT, 100),
    "subject": (False, None, 1000),
    "pin": (False, None, 300),
}


@dataclass(frozen=True)
class ResolveRequest:
    tenant: str
    application: str
    slot: str
    subject: str | None
    pin: str | None


def resolve_request(data: Any) -> ResolveRequest:
    """The resolve body, checked field by field (DomainError naming the field).

    The hot path of machines: a plain check, the same rules as ``ResolveRequestSerializer``
    (which documents the body in the OpenAPI schema) at a fraction of its cost.
    """
    if not isinstance(data, dict):
        raise DomainError("Send a JSON object.", field=None)
    found: dict[str, str | None] = {}
    for name, (required, pattern, limit) in _RESOLVE_FIELDS.items():
        value = data.get(name)
        if value is None:
            if required:
                raise DomainError("This field is required.", field=name)
            found[name] = None
            continue
        if not isinstance(value, str):
            raise DomainError(f"Must be text, not {type(value).__name__}.", field=name)
        if len(value) > limit:
            raise DomainError(f"At most {limit} characters.", field=name)
        if pattern is not None and not pattern.fullmatch(value):
            raise DomainError(f"{value[:100]!r} is not a valid {name}.", field=name)
        found[name] = value
    return ResolveRequest(
        tenant=str(found["tenant"]),
        application=str(found["application"]),
        slot=str(found["slot"]),
        subject=found["subject"],
        pin=found["pin"],
    )


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
