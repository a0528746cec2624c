"""API shapes for artifact classes, artifacts and versions."""

from __future__ import annotations

import json
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import User
from registry.choices import ContentKind, Determinism, ImpactChoice
from registry.models import (
    Artifact,
    ArtifactClass,
    Deprecation,
    Retirement,
    SafetySwitch,
    Version,
)
from registry.selectors import is_active, recommended_version_of, stage_of


class ArtifactClassSerializer(serializers.ModelSerializer[ArtifactClass]):
    class Meta:
        model = ArtifactClass
        fields = [
            "slug",
            "name",
            "content_kind",
            "content_schema",
            "interface_pointer",
            "description",
            "builtin",
        ]
        read_only_fields = ["builtin"]


class ReplacementSerializer(serializers.Serializer[Any]):
    path = serializers.CharField(help_text="class/tenant/slug/version")
    pinned = serializers.CharField(help_text="class/tenant/slug/version#sha256")


class DeprecationSerializer(serializers.ModelSerializer[Deprecation]):
    """A version's announced end: it keeps resolving until ``remove_after``, then is removed."""

    replacement = ReplacementSerializer()
    deprecated_by = serializers.SlugRelatedField[User](slug_field="username", read_only=True)
    override_reason = serializers.SerializerMethodField(
        help_text="Why an administrator deprecated it although active versions depended on it."
    )

    class Meta:
        model = Deprecation
        fields = [
            "replacement",
            "reason",
            "deprecated_at",
            "deprecated_by",
            "remove_after",
            "removed_at",
            "override_reason",
            "dependents",
        ]
        read_only_fields = fields

    def get_override_reason(self, obj: Deprecation) -> str | None:
        return obj.override_reason or None


class RetirementSerializer(serializers.ModelSerializer[Retirement]):
    """A version moved to simulation-only; its evidence is kept until ``retain_until``."""

    retired_by = serializers.SlugRelatedField[User](slug_field="username", read_only=True)

    class Meta:
        model = Retirement
        fields = ["rationale", "retired_at", "retired_by", "retain_until"]
        read_only_fields = fields


class VersionSummarySerializer(serializers.ModelSerializer[Version]):
    reference = serializers.CharField(source="path")
    sha256 = serializers.CharField(source="manifest_sha256")
    created_by = serializers.SlugRelatedField[User](slug_field="username", read_only=True)
    deprecation = DeprecationSerializer(
        read_only=True, allow_null=True, help_text="null unless the version is deprecated."
    )
    retirement = RetirementSerializer(
        read_only=True, allow_null=True, help_text="null unless the version is retired."
    )
    stage = serializers.SerializerMethodField(
        help_text="draft, evaluated, approved, active, deprecated or simulation_only"
    )
    active = serializers.SerializerMethodField(
        help_text="Whether this is the artifact's active version (what an unversioned reference resolves to)."
    )

    class Meta:
        model = Version
        fields = [
            "version",
            "reference",
            "sha256",
            "stage",
            "active",
            "declared_impact",
            "change_reason",
            "created_by",
            "created_at",
            "deprecation",
            "retirement",
        ]

    def get_stage(self, obj: Version) -> str:
        return stage_of(obj)

    def get_active(self, obj: Version) -> bool:
        return is_active(obj)


class VersionLifecycleSerializer(serializers.Serializer[Any]):
    """An artifact's active or recommended version, and whether it is deprecated or retired."""

    version = serializers.CharField()
    reference = serializers.CharField()
    sha256 = serializers.CharField()
    deprecation = DeprecationSerializer(allow_null=True)
    retirement = RetirementSerializer(allow_null=True)


def _lifecycle(artifact: Artifact, version: Version | None) -> dict[str, Any] | None:
    if version is None:
        return None
    return {
        "version": version.version,
        # The artifact's own path: version.artifact would cost a query per row.
        "reference": f"{artifact.path}/{version.version}",
        "sha256": version.manifest_sha256,
        "deprecation": getattr(version, "deprecation", None),
        "retirement": getattr(version, "retirement", None),
    }


class ArtifactSerializer(serializers.ModelSerializer[Artifact]):
    artifact_class = serializers.CharField(source="artifact_class.slug")
    tenant = serializers.CharField(source="tenant.slug")
    owner = serializers.SlugRelatedField[User](slug_field="username", read_only=True)
    deputy = serializers.SlugRelatedField[User](
        slug_field="username",
        read_only=True,
        help_text="Signs off beside the owner where the approval policy asks for both.",
    )
    action_eligible = serializers.BooleanField(
        read_only=True,
        help_text="Its output can trigger actions: compatible within a major version, a safety "
        "switch (GET .../safety-switch/).",
    )
    path = serializers.CharField()
    recommended_version = serializers.SerializerMethodField(
        help_text="Never a deprecated, removed or retired version (null then)."
    )
    active_version = serializers.CharField(
        source="active_version.version",
        default=None,
        help_text="Set only by a promoted change request or a rollback.",
    )
    recommended = serializers.SerializerMethodField(
        help_text="The recommended version with its deprecation and retirement (null if none)."
    )
    active = serializers.SerializerMethodField(
        help_text="The active version with its deprecation and retirement (null if none)."
    )
    url = serializers.SerializerMethodField()

    class Meta:
        model = Artifact
        fields = [
            "path",
            "artifact_class",
            "tenant",
            "slug",
            "title",
            "summary",
            "license",
            "owner",
            "deputy",
            "action_eligible",
            "recommended_version",
            "active_version",
            "recommended",
            "active",
            "created_at",
            "url",
        ]

    def get_recommended_version(self, obj: Artifact) -> str | None:
        version = recommended_version_of(obj)
        return version.version if version is not None else None

    @extend_schema_field(VersionLifecycleSerializer(allow_null=True))
    def get_recommended(self, obj: Artifact) -> Any:
        row = _lifecycle(obj, recommended_version_of(obj))
        return None if row is None else VersionLifecycleSerializer(row).data

    @extend_schema_field(VersionLifecycleSerializer(allow_null=True))
    def get_active(self, obj: Artifact) -> Any:
        row = _lifecycle(obj, obj.active_version)
        return None if row is None else VersionLifecycleSerializer(row).data

    def get_url(self, obj: Artifact) -> str:
        return f"/api/v1/artifacts/{obj.path}/"


class ArtifactCreateSerializer(serializers.Serializer[Any]):
    artifact_class = serializers.CharField(max_length=100)
    tenant = serializers.CharField(max_length=63)
    slug = serializers.CharField(max_length=100)
    title = serializers.CharField(max_length=200)
    summary = serializers.CharField(required=False, allow_blank=True, default="")
    license = serializers.CharField(max_length=100, required=False, default="proprietary")
    owner = serializers.CharField(max_length=150, required=False, allow_null=True, default=None)


class DeprecateSerializer(serializers.Serializer[Any]):
    replacement = serializers.CharField(
        max_length=300,
        help_text="The version to use instead: a version number of this artifact, or a reference.",
    )
    reason = serializers.CharField(max_length=5000)
    remove_after_days = serializers.IntegerField(
        help_text="Grace period: it stops resolving this many days from now "
        "(at least DEPRECATION_MIN_GRACE_DAYS)."
    )
    override_reason = serializers.CharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        default="",
        help_text="Administrators: why to deprecate although active versions still depend on it.",
    )


class RetireSerializer(serializers.Serializer[Any]):
    rationale = serializers.CharField(
        max_length=5000, help_text="Why it moves to simulation-only (the sunset rationale)."
    )


class DescribeSerializer(serializers.Serializer[Any]):
    title = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text="The artifact's title (omitted: kept). A blank title is refused.",
    )
    summary = serializers.CharField(
        max_length=4000,
        required=False,
        allow_blank=True,
        help_text="What it is for (omitted: kept; blank: none). The Draft stage's inventory "
        "criterion asks for one.",
    )


class OwnerSetSerializer(serializers.Serializer[Any]):
    owner = serializers.CharField(
        max_length=150, help_text="Username of the new owner (an active member)."
    )
    reason = serializers.CharField(max_length=2000)


class VariableSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100)
    required = serializers.BooleanField(default=True)  # type: ignore[assignment]


class IoSchemaSerializer(serializers.Serializer[Any]):
    input = serializers.JSONField(help_text="JSON Schema of the input.")
    output = serializers.JSONField(help_text="JSON Schema of the output.")


class PublishMetadataSerializer(serializers.Serializer[Any]):
    """What ``metadata`` may hold (documentation only: the publish service checks it and
    refuses a bad key with ``field`` = ``metadata.<key>``). Every key is optional and signed."""

    pinned_models = serializers.ListField(child=serializers.CharField(), required=False)
    template_refs = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Pinned template references."
    )
    policy_pack_hash = serializers.CharField(required=False)
    environment_fingerprint = serializers.CharField(required=False)
    labels = serializers.DictField(child=serializers.CharField(), required=False)
    determinism = serializers.ChoiceField(
        choices=Determinism.choices, required=False, help_text="The version's classification."
    )
    evaluation_plan = serializers.CharField(max_length=4000, required=False)
    risk_note = serializers.CharField(max_length=4000, required=False)
    no_datasets = serializers.CharField(
        max_length=2000,
        required=False,
        help_text="Why this version uses no dataset (refused with a dataset dependency).",
    )
    pr_url = serializers.URLField(
        max_length=500, required=False, help_text="http(s) address of the pull request."
    )
    io_schema = IoSchemaSerializer(required=False, help_text="The declared input/output contract.")


@extend_schema_field(PublishMetadataSerializer)
class PublishMetadataField(serializers.JSONField):
    """A JSON object, documented as :class:`PublishMetadataSerializer`."""


class PublishSerializer(serializers.Serializer[Any]):
    content = serializers.JSONField(
        required=False, help_text="Text (prompts, templates) or JSON (rulesets, manifests)."
    )
    file = serializers.FileField(
        required=False, help_text="For file classes (models, bundles); multipart."
    )
    impact = serializers.ChoiceField(choices=ImpactChoice.choices)
    reason = serializers.CharField()
    version = serializers.CharField(required=False, allow_null=True, default=None)
    input_variables = VariableSerializer(many=True, required=False, allow_null=True, default=None)
    metadata = PublishMetadataField(
        required=False,
        default=dict,
        help_text="Signed metadata, lifecycle evidence and provenance (multipart: JSON text).",
    )
    dependencies = serializers.ListField(
        child=serializers.CharField(max_length=300), required=False, default=list
    )

    def validate_metadata(self, value: Any) -> Any:
        if isinstance(value, str):  # multipart sends JSON as text
            try:
                value = json.loads(value or "{}")
            except ValueError as exc:
                raise serializers.ValidationError(f"not JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise serializers.ValidationError("must be an object")
        return value


class VersionDetailSerializer(VersionSummarySerializer):
    artifact = serializers.CharField(source="artifact.path")
    content = serializers.SerializerMethodField()
    manifest = serializers.SerializerMethodField(help_text="The signed RFC 8785 bytes (UTF-8).")
    key_id = serializers.CharField()
    signature = serializers.CharField()
    verified = serializers.SerializerMethodField()
    dependencies = serializers.SerializerMethodField()
    dependents = serializers.SerializerMethodField()

    class Meta(VersionSummarySerializer.Meta):
        fields = [
            *VersionSummarySerializer.Meta.fields,
            "artifact",
            "content_kind",
            "content",
            "content_name",
            "content_size",
            "content_sha256",
            "input_variables",
            "detected_changes",
            "metadata",
            "manifest",
            "key_id",
            "signature",
            "verified",
            "dependencies",
            "dependents",
        ]

    def get_content(self, obj: Version) -> Any:
        if obj.content_kind == ContentKind.TEXT:
            return obj.content_text
        if obj.content_kind == ContentKind.JSON:
            return obj.content_json
        return None

    def get_manifest(self, obj: Version) -> str:
        return bytes(obj.manifest).decode()

    def get_verified(self, obj: Version) -> dict[str, Any]:
        from registry.verification import check_version

        result = check_version(obj)
        return {"ok": result.ok, "detail": result.reason}

    def get_dependencies(self, obj: Version) -> list[str]:
        return [d.reference for d in obj.dependencies.all()]

    def get_dependents(self, obj: Version) -> list[str]:
        return [
            d.version.pinned
            for d in obj.dependents.select_related(
                "version__artifact__artifact_class", "version__artifact__tenant"
            )
        ]


# --- action-eligible artifacts -----------------------------------------------------------------


class ActionEligibleSetSerializer(serializers.Serializer[Any]):
    value = serializers.BooleanField(help_text="true: action-eligible; false: not.")
    reason = serializers.CharField(max_length=2000)


class DeputySetSerializer(serializers.Serializer[Any]):
    deputy = serializers.CharField(
        max_length=150,
        allow_null=True,
        help_text="Username of an active member other than the owner; null: no deputy.",
    )


class SafetySwitchReasonSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=2000)


class SafetySwitchRowSerializer(serializers.ModelSerializer[SafetySwitch]):
    """One halt: who engaged it and why, and (once released) who released it and why."""

    engaged_by = serializers.SlugRelatedField[User](slug_field="username", read_only=True)
    released_by = serializers.SlugRelatedField[User](slug_field="username", read_only=True)

    class Meta:
        model = SafetySwitch
        fields = [
            "reason",
            "engaged_at",
            "engaged_by",
            "released_at",
            "released_by",
            "release_reason",
        ]


class SafetySwitchStateSerializer(serializers.Serializer[Any]):
    """An artifact's safety switch: engaged or not, the halt message resolution answers, history."""

    artifact = serializers.CharField(help_text="class/tenant/slug")
    action_eligible = serializers.BooleanField()
    engaged = serializers.BooleanField()
    halted = serializers.CharField(
        allow_null=True,
        help_text="While engaged: 'halted: safety switch engaged on <artifact> by <user>: "
        "<reason>', what every resolution answers.",
    )
    history = SafetySwitchRowSerializer(many=True, help_text="Every halt, newest first.")
