"""API shapes: the runtime (resolve request and answer, the signed snapshot) and the
management of applications, slots, overrides and rollouts.

Input serializers check the shape only; ``rollouts.services`` enforces the rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from governance.kernel.errors import DomainError
from registry.models import Version
from rollouts.choices import (
    BUCKETS,
    Arm,
    PointerKind,
    PromotionTarget,
    Reason,
    RolloutState,
    RolloutStrategy,
)
from rollouts.models import (
    APP_SLUG_RE,
    SLOT_NAME_RE,
    Application,
    Override,
    PointerMove,
    Rollout,
    RolloutTarget,
    Slot,
)

REASON_MAX = 2000

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


class ResolveRequestSerializer(serializers.Serializer[Any]):
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


class AnswerSerializer(serializers.Serializer[Any]):
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
        help_text="pinned, canary, stable, on, override, default, disabled or halted"
    )
    rollout = serializers.CharField(allow_null=True, help_text="RO-<number>")
    rollout_id = serializers.UUIDField(allow_null=True)
    step = serializers.IntegerField(allow_null=True)
    arm = serializers.ChoiceField(choices=Arm.choices, allow_null=True)
    bucket = serializers.IntegerField(allow_null=True, help_text="0..99,999")
    sequence = serializers.IntegerField(help_text="The event log's size the answer reflects.")
    warnings = serializers.ListField(child=serializers.CharField())
    halted = serializers.CharField(
        allow_null=True,
        help_text="Set while the artifact's safety switch is engaged (reason DISABLED, variant "
        "halted, no version): 'halted: safety switch engaged on <artifact> by <user>: <reason>'.",
    )


class SignatureSerializer(serializers.Serializer[Any]):
    algorithm = serializers.CharField(help_text="ed25519")
    key_id = serializers.CharField(help_text="A key of GET /api/v1/keys/")
    signed = serializers.CharField(help_text="sha256(rfc8785(snapshot))")
    value = serializers.CharField(help_text="hex Ed25519 signature of the 32-byte hash")


class RuntimeDocumentSerializer(serializers.Serializer[Any]):
    """The signed runtime configuration (``snapshot`` is the signed body)."""

    sha256 = serializers.CharField(help_text="SHA-256 of the RFC 8785 bytes of 'snapshot'.")
    signature = SignatureSerializer()
    snapshot = serializers.JSONField(
        help_text="format, tenant, application, application_tenant, sequence, buckets, "
        "slots{name: artifact, disabled, default, override, rules[], warnings[]}, "
        "versions{ref: path, version, sha256, stage, content_kind, content, content_sha256, warning}"
    )


# --- management: applications, slots, overrides, rollouts ----------------------------------


def _username(user: Any) -> str | None:
    return user.username if user is not None else None


class VersionPointerSerializer(serializers.Serializer[Any]):
    """A version a pointer names: its path, number and manifest hash."""

    path = serializers.CharField(help_text="class/tenant/slug/version")
    version = serializers.CharField()
    sha256 = serializers.CharField(source="manifest_sha256")


def _version(version: Version | None) -> dict[str, Any] | None:
    return dict(VersionPointerSerializer(version).data) if version is not None else None


# --- applications and slots ---------------------------------------------------------------


class ApplicationSerializer(serializers.ModelSerializer[Application]):
    tenant = serializers.CharField(source="tenant.slug")
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)
    shared = serializers.SerializerMethodField(
        help_text="Owned by the platform tenant: every tenant may read its runtime configuration."
    )

    class Meta:
        model = Application
        fields = ["slug", "name", "description", "tenant", "shared", "created_at", "created_by"]
        read_only_fields = fields

    def get_shared(self, obj: Application) -> bool:
        from django.conf import settings

        return bool(obj.tenant.slug == settings.PLATFORM_TENANT_SLUG)


class ApplicationCreateSerializer(serializers.Serializer[Any]):
    tenant = serializers.CharField(max_length=63, help_text="The owning tenant's slug.")
    slug = serializers.CharField(max_length=100)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(
        max_length=20000, required=False, default="", allow_blank=True
    )


class ApplicationUpdateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(max_length=20000, required=False, allow_blank=True)


class OverrideSerializer(serializers.ModelSerializer[Override]):
    tenant = serializers.CharField(source="tenant.slug")
    version = VersionPointerSerializer()
    rollout = serializers.CharField(source="rollout.reference", default=None, allow_null=True)
    set_by = serializers.CharField(source="set_by.username", default=None, allow_null=True)

    class Meta:
        model = Override
        fields = ["tenant", "version", "rollout", "reason", "set_at", "set_by"]
        read_only_fields = fields


class PointerMoveSerializer(serializers.ModelSerializer[PointerMove]):
    """One move of a serving pointer: who, when, why, from what to what."""

    # A string, not a ChoiceField: "kind" names other enums in the schema too.
    kind = serializers.CharField(help_text=", ".join(PointerKind.values))
    slot = serializers.SerializerMethodField()
    artifact = serializers.CharField(source="artifact.path")
    tenant = serializers.CharField(source="tenant.slug", default=None, allow_null=True)
    from_version = VersionPointerSerializer(source="from_version", allow_null=True)
    to_version = VersionPointerSerializer(source="to_version", allow_null=True)
    rollout = serializers.CharField(source="rollout.reference", default=None, allow_null=True)
    actor = serializers.CharField(source="actor.username", default=None, allow_null=True)
    at = serializers.DateTimeField(source="created_at")

    class Meta:
        model = PointerMove
        fields = [
            "id",
            "kind",
            "slot",
            "artifact",
            "tenant",
            "from_version",
            "to_version",
            "weight",
            "rollout",
            "reason",
            "actor",
            "at",
        ]
        read_only_fields = fields

    def get_slot(self, obj: PointerMove) -> str | None:
        """``application.slot``; null for a default move (it moves every slot of the artifact)."""
        return str(obj.slot) if obj.slot_id else None

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        # "from" is a Python keyword, so the fields are declared under other names.
        wire = {"from_version": "from", "to_version": "to"}
        return {wire.get(name, name): field for name, field in super().get_fields().items()}


class ApplicationSlotSerializer(serializers.ModelSerializer[Slot]):
    application = serializers.CharField(source="application.slug")
    artifact = serializers.CharField(source="artifact.path", help_text="class/tenant/slug")
    default = serializers.SerializerMethodField(
        method_name="default_version",
        help_text="The slot's default version (the artifact's active version); null = switched off.",
    )
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)

    class Meta:
        model = Slot
        fields = [
            "name",
            "application",
            "artifact",
            "description",
            "default",
            "created_at",
            "created_by",
        ]
        read_only_fields = fields

    @extend_schema_field(VersionPointerSerializer(allow_null=True))
    def default_version(self, obj: Slot) -> dict[str, Any] | None:
        return _version(obj.artifact.active_version)


class ApplicationSlotDetailSerializer(ApplicationSlotSerializer):
    """A slot with its overrides, the rollouts moving it and its history of pointer moves."""

    overrides = serializers.SerializerMethodField()
    rollouts = serializers.SerializerMethodField(help_text="Active rollouts targeting this slot.")
    history = serializers.SerializerMethodField(
        help_text="Pointer moves of this slot and default moves of its artifact, newest first."
    )

    class Meta(ApplicationSlotSerializer.Meta):
        fields = [*ApplicationSlotSerializer.Meta.fields, "overrides", "rollouts", "history"]
        read_only_fields = fields

    def _visible(self, tenant_id: Any) -> bool:
        """Another tenant's override of a shared slot is not the caller's to see."""
        return tenant_id is None or tenant_id in self.context.get("tenants", ())

    @extend_schema_field(OverrideSerializer(many=True))
    def get_overrides(self, obj: Slot) -> Any:
        from rollouts.selectors import overrides_for

        rows = [
            o for o in overrides_for([obj]).select_related("set_by") if self._visible(o.tenant_id)
        ]
        return OverrideSerializer(rows, many=True).data

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_rollouts(self, obj: Slot) -> list[str]:
        from rollouts.selectors import active_rollouts_for

        targets = active_rollouts_for([obj]).get(obj.pk, [])
        return sorted({t.rollout.reference for t in targets if self._visible(t.rollout.tenant_id)})

    @extend_schema_field(PointerMoveSerializer(many=True))
    def get_history(self, obj: Slot) -> Any:
        from rollouts.selectors import slot_history

        rows = [
            m
            for m in slot_history(obj).select_related(
                "slot__application", "artifact__artifact_class", "artifact__tenant"
            )
            if self._visible(m.tenant_id)
        ]
        return PointerMoveSerializer(rows, many=True).data


class SlotCreateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100)
    artifact = serializers.CharField(
        max_length=300,
        help_text="class/tenant/slug of the artifact (its tenant or the platform's).",
    )
    description = serializers.CharField(
        max_length=20000, required=False, default="", allow_blank=True
    )


class SlotUpdateSerializer(serializers.Serializer[Any]):
    description = serializers.CharField(max_length=20000, allow_blank=True)


class OverrideSetSerializer(serializers.Serializer[Any]):
    version = serializers.CharField(
        max_length=300, help_text="A version of the slot's artifact: its number, or any reference."
    )
    reason = serializers.CharField(max_length=REASON_MAX)


class ReasonSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=REASON_MAX)


# --- rollouts ------------------------------------------------------------------------------


class RolloutRowSerializer(serializers.ModelSerializer[Rollout]):
    reference = serializers.CharField(help_text="RO-<number>")
    tenant = serializers.CharField(source="tenant.slug")
    change = serializers.CharField(source="change.reference", help_text="CR-YYYY-NNNN")
    # Strings, not ChoiceFields: "state" and "strategy" name other enums in the schema too.
    strategy = serializers.CharField(help_text=", ".join(RolloutStrategy.values))
    state = serializers.CharField(help_text=", ".join(RolloutState.values))
    target = serializers.CharField(help_text=", ".join(PromotionTarget.values))
    weight = serializers.IntegerField(
        help_text=f"The canary weight now, in buckets of {BUCKETS:,} (0 before the first step)."
    )
    weight_percent = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)

    class Meta:
        model = Rollout
        fields = [
            "reference",
            "number",
            "tenant",
            "change",
            "strategy",
            "target",
            "state",
            "revision",
            "step",
            "weight",
            "weight_percent",
            "created_at",
            "created_by",
            "updated_at",
        ]
        read_only_fields = fields

    def get_weight_percent(self, obj: Rollout) -> float:
        return obj.weight * 100 / BUCKETS


class RolloutTargetSerializer(serializers.ModelSerializer[RolloutTarget]):
    slot = serializers.CharField(source="slot.__str__", help_text="application.slot")
    artifact = serializers.CharField(source="slot.artifact.path")
    baseline = VersionPointerSerializer(allow_null=True, help_text="The stable arm.")
    candidate = VersionPointerSerializer()

    class Meta:
        model = RolloutTarget
        fields = ["slot", "artifact", "baseline", "candidate"]
        read_only_fields = fields


class ManifestStatusSerializer(serializers.Serializer[Any]):
    number = serializers.IntegerField()
    status = serializers.CharField(help_text="pass or fail, derived from the phases")
    sha256 = serializers.CharField()
    created_at = serializers.DateTimeField()


class RolloutDetailSerializer(RolloutRowSerializer):
    """Everything about one rollout: steps, targets, the moves it made, its manifest and actions."""

    finished_by = serializers.CharField(
        source="finished_by.username", default=None, allow_null=True
    )
    targets = serializers.SerializerMethodField()
    moves = serializers.SerializerMethodField(help_text="The pointer moves it made, oldest first.")
    manifest = serializers.SerializerMethodField(
        help_text="The newest stored version of its phase manifest; null before the first one."
    )
    canary_blockers = serializers.SerializerMethodField(
        help_text="What stops the next canary step now (manifest phases 1-4 that do not pass); "
        "empty when nothing does or the rollout is not a canary that can take a step."
    )
    allowed = serializers.SerializerMethodField(
        help_text="What the caller may do to this rollout now (rollouts.permissions, the rules "
        "the services enforce, and its state); null when the answer has no caller."
    )

    class Meta(RolloutRowSerializer.Meta):
        fields = [
            *RolloutRowSerializer.Meta.fields,
            "steps",
            "cohort",
            "salt",
            "flag_key",
            "flag_on",
            "flag_expires_at",
            "reason",
            "started_at",
            "finished_at",
            "finished_by",
            "finish_reason",
            "targets",
            "moves",
            "manifest",
            "canary_blockers",
            "allowed",
        ]
        read_only_fields = fields

    @extend_schema_field(RolloutTargetSerializer(many=True))
    def get_targets(self, obj: Rollout) -> Any:
        rows = obj.targets.select_related(
            "slot__application",
            "slot__artifact__artifact_class",
            "slot__artifact__tenant",
            *(
                f"{arm}__artifact__{p}"
                for arm in ("baseline", "candidate")
                for p in ("artifact_class", "tenant")
            ),
        )
        return RolloutTargetSerializer(rows, many=True).data

    @extend_schema_field(PointerMoveSerializer(many=True))
    def get_moves(self, obj: Rollout) -> Any:
        rows = obj.moves.select_related(
            "slot__application",
            "artifact__artifact_class",
            "artifact__tenant",
            "tenant",
            "actor",
            "rollout",
            *(
                f"{end}__artifact__{p}"
                for end in ("from_version", "to_version")
                for p in ("artifact_class", "tenant")
            ),
        ).order_by("id")
        return PointerMoveSerializer(rows, many=True).data

    @extend_schema_field(ManifestStatusSerializer(allow_null=True))
    def get_manifest(self, obj: Rollout) -> Any:
        from rollouts.manifest import manifest_latest

        latest = manifest_latest(obj)
        return ManifestStatusSerializer(latest).data if latest is not None else None

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_canary_blockers(self, obj: Rollout) -> list[str]:
        from rollouts.manifest import canary_blockers

        stepping = {RolloutState.DRAFT, RolloutState.PROGRESSING, RolloutState.PAUSED}
        if obj.strategy != RolloutStrategy.CANARY or obj.state not in stepping:
            return []
        return canary_blockers(obj)

    @extend_schema_field(serializers.DictField(child=serializers.BooleanField(), allow_null=True))
    def get_allowed(self, obj: Rollout) -> dict[str, bool] | None:
        from rollouts.permissions import rollout_actions

        user = self.context.get("user")
        return rollout_actions(user, obj).as_dict() if user is not None else None


class RolloutCreateSerializer(serializers.Serializer[Any]):
    """Start a rollout from a promoted change."""

    change = serializers.CharField(max_length=64, help_text="CR-YYYY-NNNN of a promoted change.")
    strategy = serializers.ChoiceField(
        choices=RolloutStrategy.choices,
        required=False,
        allow_null=True,
        default=None,
        help_text="Default: the strategy the change names.",
    )
    steps = serializers.ListField(
        child=serializers.JSONField(),
        required=False,
        allow_null=True,
        default=None,
        max_length=100,
        help_text=f"canary: weights in buckets of {BUCKETS:,} (1% = {BUCKETS // 100:,}); "
        "tenant: waves, each a list of tenant slugs. Default: 1%, 5%, 25%, 50%, 100%.",
    )
    target = serializers.ChoiceField(
        choices=PromotionTarget.choices, required=False, default="live"
    )
    cohort = serializers.ListField(
        child=serializers.CharField(max_length=200),
        required=False,
        allow_null=True,
        default=None,
        max_length=100_000,
        help_text="paper target: the subject ids that get the candidate.",
    )
    flag_key = serializers.CharField(max_length=100, required=False, default="", allow_blank=True)
    flag_expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    reason = serializers.CharField(
        max_length=REASON_MAX, required=False, default="", allow_blank=True
    )
    start = serializers.BooleanField(
        required=False, default=False, help_text="Start it at once (its first step)."
    )


class RolloutActionSerializer(serializers.Serializer[Any]):
    revision = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        help_text="The revision you saw; a stale one is refused with 409 (omit: whatever it is now).",
    )
    reason = serializers.CharField(
        max_length=REASON_MAX, required=False, default="", allow_blank=True
    )


class RolloutReasonedActionSerializer(RolloutActionSerializer):
    reason = serializers.CharField(max_length=REASON_MAX)


class RolloutFlagSerializer(RolloutActionSerializer):
    on = serializers.BooleanField(
        help_text="Turn the rollout's flag on (serve the candidate) or off."
    )
    reason = serializers.CharField(max_length=REASON_MAX)
