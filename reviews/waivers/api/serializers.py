"""API shapes of waivers."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any, cast

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from governance.kernel.serializers import HistoryEntrySerializer
from reviews.choices import CheckKind
from reviews.waivers.choices import WaiverState
from reviews.waivers.models import Waiver
from reviews.waivers.permissions import waiver_actions
from reviews.waivers.selectors import waiver_events, waiver_lineage


def _username(user: Any) -> str | None:
    return user.username if user is not None else None


class WaiverScopeSerializer(serializers.Serializer[Any]):
    change = serializers.CharField(
        allow_null=True, help_text="CR-YYYY-NNNN when the waiver covers that change only."
    )
    change_revision = serializers.IntegerField(
        allow_null=True,
        help_text="The revision of that change it covers; once the change is revised, renew it.",
    )
    artifacts = serializers.ListField(
        child=serializers.CharField(),
        help_text="class/tenant/slug of each artifact; it covers changes of these artifacts only.",
    )


class WaiverSerializer(serializers.ModelSerializer[Waiver]):
    """A waiver as it stands at one moment (``now`` in the context): its terms, stamps and state."""

    reference = serializers.CharField(help_text="WV-YYYY-NNNN")
    tenant = serializers.CharField(source="tenant.slug")
    check = serializers.ChoiceField(
        source="check_kind", choices=CheckKind.choices, help_text="The check it lets pass."
    )
    check_label = serializers.CharField(source="get_check_kind_display")
    metric = serializers.SerializerMethodField(
        help_text="Change gates only: the one metric waived (null: the whole check)."
    )
    scope = serializers.SerializerMethodField()
    owner = serializers.CharField(source="owner.username")
    granted_by = serializers.SerializerMethodField()
    countersigned_by = serializers.SerializerMethodField()
    revoked_by = serializers.SerializerMethodField()
    state = serializers.SerializerMethodField(
        help_text=", ".join(WaiverState.values) + " (derived from the dates and stamps)"
    )
    renews = serializers.SerializerMethodField(help_text="The waiver this one renewed.")
    renewed_by = serializers.SerializerMethodField(help_text="The waiver that renewed this one.")
    url = serializers.SerializerMethodField()

    class Meta:
        model = Waiver
        fields = [
            "id",
            "reference",
            "tenant",
            "state",
            "check",
            "check_label",
            "metric",
            "scope",
            "owner",
            "justification",
            "mitigation",
            "advisory_links",
            "starts_at",
            "expires_at",
            "granted_by",
            "needs_security",
            "countersigned_by",
            "countersigned_at",
            "revoked_at",
            "revoked_by",
            "revoke_reason",
            "renews",
            "renewed_by",
            "url",
        ]
        read_only_fields = fields

    def _now(self) -> datetime:
        now = self.context.get("now")
        if now is None:  # one moment for every row this serializer renders
            now = self.context["now"] = timezone.now()
        return cast(datetime, now)

    def get_metric(self, obj: Waiver) -> str | None:
        return obj.metric or None

    @extend_schema_field(WaiverScopeSerializer)
    def get_scope(self, obj: Waiver) -> dict[str, Any]:
        return {
            "change": obj.change.reference if obj.change_id and obj.change else None,
            "change_revision": obj.change_revision,
            "artifacts": sorted(a.path for a in obj.artifacts.all()),
        }

    def get_granted_by(self, obj: Waiver) -> str | None:
        return _username(obj.granted_by)

    def get_countersigned_by(self, obj: Waiver) -> str | None:
        return _username(obj.countersigned_by)

    def get_revoked_by(self, obj: Waiver) -> str | None:
        return _username(obj.revoked_by)

    @extend_schema_field(serializers.ChoiceField(choices=WaiverState.choices))
    def get_state(self, obj: Waiver) -> str:
        annotated = getattr(obj, "state", None)  # waivers_by_state computed it in the query
        return str(annotated or obj.state_at(self._now()).value)

    def get_renews(self, obj: Waiver) -> str | None:
        return obj.renews.reference if obj.renews_id and obj.renews else None

    def get_renewed_by(self, obj: Waiver) -> str | None:
        renewal = getattr(obj, "renewal", None)  # reverse one-to-one: None when absent
        return renewal.reference if renewal is not None else None

    def get_url(self, obj: Waiver) -> str:
        return f"/api/v1/waivers/{obj.reference}/"


class WaiverDetailSerializer(WaiverSerializer):
    """One waiver with its whole renewal chain and its history in the log."""

    lineage = serializers.SerializerMethodField(
        help_text="References of the renewal chain this waiver belongs to, oldest first."
    )
    history = serializers.SerializerMethodField(
        help_text="The log entries of this waiver (granted, countersigned, revoked...)."
    )
    allowed = serializers.SerializerMethodField(
        help_text="What the caller may do to this waiver now (renew, revoke, countersign), by "
        "reviews.waivers.permissions, the rules the services enforce; null without a caller."
    )

    class Meta(WaiverSerializer.Meta):
        fields = [*WaiverSerializer.Meta.fields, "lineage", "history", "allowed"]
        read_only_fields = fields

    @extend_schema_field(serializers.DictField(child=serializers.BooleanField(), allow_null=True))
    def get_allowed(self, obj: Waiver) -> dict[str, bool] | None:
        user = self.context.get("user")
        if user is None:
            return None
        return asdict(waiver_actions(user, obj, obj.state_at(self.context["now"])))

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_lineage(self, obj: Waiver) -> list[str]:
        return [w.reference for w in waiver_lineage(obj)]

    @extend_schema_field(HistoryEntrySerializer(many=True))
    def get_history(self, obj: Waiver) -> Any:
        return HistoryEntrySerializer(waiver_events([obj]), many=True).data


class WaiverGrantSerializer(serializers.Serializer[Any]):
    """A new waiver. Scope it to one ``change`` or to ``artifacts`` (not both)."""

    tenant = serializers.CharField(max_length=63, help_text="Tenant slug.")
    check = serializers.ChoiceField(choices=CheckKind.choices, help_text="The check to waive.")
    metric = serializers.CharField(
        max_length=100,
        required=False,
        allow_blank=True,
        default="",
        help_text="change_gates only: waive this one metric instead of the whole check.",
    )
    change = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        allow_null=True,
        default=None,
        help_text="CR-YYYY-NNNN: the one change it covers.",
    )
    artifacts = serializers.ListField(
        child=serializers.CharField(max_length=300),
        required=False,
        default=list,
        max_length=100,
        help_text="class/tenant/slug of each artifact: it covers changes of these artifacts only.",
    )
    owner = serializers.CharField(
        max_length=150, help_text="Username of the person accountable for it."
    )
    justification = serializers.CharField(max_length=5000)
    mitigation = serializers.CharField(max_length=5000, help_text="The plan to remove the need.")
    advisory_links = serializers.ListField(
        child=serializers.CharField(max_length=500),
        required=False,
        default=list,
        max_length=20,
        help_text="http(s) links to advisories or tickets.",
    )
    expires_at = serializers.DateTimeField(
        help_text="ISO 8601; in the future and within WAIVER_MAX_DAYS."
    )


class WaiverRenewSerializer(serializers.Serializer[Any]):
    """A renewal: a new waiver with the same scope; terms left out are kept."""

    expires_at = serializers.DateTimeField(help_text="ISO 8601; the new waiver's expiry.")
    justification = serializers.CharField(max_length=5000, required=False)
    mitigation = serializers.CharField(max_length=5000, required=False)
    advisory_links = serializers.ListField(
        child=serializers.CharField(max_length=500), required=False, max_length=20
    )


class WaiverRevokeSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=2000, help_text="Why the waiver ends now.")
