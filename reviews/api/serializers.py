"""API shapes for change requests, sign-off, evidence, approval policies and rollbacks.

Input serializers check shape only (types, lengths, choices); ``reviews.services`` enforces
the rules. Output serializers render what ``reviews.selectors`` read.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.serializers import WebAuthnChallengeSerializer, credential_json
from governance.kernel.inputs import json_problem
from governance.kernel.serializers import HistoryEntrySerializer
from reviews import checks as check_catalog
from reviews import selectors
from reviews.choices import (
    OPEN_STATES,
    ChangeStatus,
    CheckKind,
    CheckStatus,
    Decision,
    DiffSide,
    Requirement,
)
from reviews.models import (
    Approval,
    ChangeRequest,
    CheckRun,
    Comment,
    DeploymentChecklist,
    EvaluationReport,
)

MAX_REFERENCE_LENGTH = 300


#: How the API names a :class:`~governance.kernel.inputs.JsonProblem` (``where`` is its path).
JSON_PROBLEMS = {
    "nul": "Text must not contain NUL characters{where}.",
    "not_finite": "Numbers must be finite{where}.",
    "unsafe_integer": "Integers must be within ±(2**53 - 1){where}.",
}


def _check_json(value: Any) -> None:
    """Refuse what the canonical JSON form or the database cannot hold (the kernel's one rule,
    :func:`~governance.kernel.inputs.json_problem`, integers beyond 2**53 included)."""
    found = json_problem(value, safe_integers=True)
    if found is not None:
        where = f" at {found.path}" if found.path else ""
        raise serializers.ValidationError(JSON_PROBLEMS[found.kind].format(where=where))


@extend_schema_field(OpenApiTypes.NUMBER)
class NumberField(serializers.Field[Any, Any, Any, Any]):
    """A JSON number kept exactly as sent (420 stays an integer), never a string or a boolean."""

    default_error_messages = {"invalid": "Must be a number."}

    def to_internal_value(self, data: Any) -> int | float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        try:
            _check_json(data)
        except serializers.ValidationError:
            self.fail("invalid")
        number: int | float = data
        return number

    def to_representation(self, value: Any) -> Any:
        return value


# --- input ----------------------------------------------------------------------------------


class FlagsSerializer(serializers.Serializer[Any]):
    """The facts about a change that pick its approval path."""

    privacy_related = serializers.BooleanField(default=False)
    external_egress = serializers.BooleanField(
        default=False, help_text="Changes which external LLM services receive data."
    )
    emergency = serializers.BooleanField(
        default=False, help_text="Reviewed on the emergency path; a postmortem is due after."
    )


class FlagsPatchSerializer(serializers.Serializer[Any]):
    """Flags to change on a revision; the ones left out keep their value."""

    privacy_related = serializers.BooleanField(required=False)
    external_egress = serializers.BooleanField(required=False)
    emergency = serializers.BooleanField(required=False)


def _reference_list(**kwargs: Any) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=MAX_REFERENCE_LENGTH),
        allow_empty=False,
        help_text=(
            "Version references: class/tenant/slug/version, slug@version or "
            "slug:version#sha256 (short forms in the change's tenant)."
        ),
        **kwargs,
    )


class ChangeCreateSerializer(serializers.Serializer[Any]):
    tenant = serializers.CharField(max_length=63, help_text="Tenant slug.")
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    risk_note = serializers.CharField(required=False, allow_blank=True, default="")
    rollback_plan = serializers.CharField()
    migration_plan = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="How consumers move across a breaking change (action-eligible artifacts).",
    )
    proposed = _reference_list()
    flags = FlagsSerializer(required=False)
    golden_corpus = serializers.CharField(
        max_length=MAX_REFERENCE_LENGTH,
        required=False,
        allow_blank=True,
        allow_null=True,
        default=None,
        help_text="A golden-corpus version reference to simulate and evaluate against.",
    )


class ChangeReviseSerializer(serializers.Serializer[Any]):
    """A new revision: back to draft, every live decision voided. Only the fields sent change."""

    reason = serializers.CharField(max_length=500)
    proposed = _reference_list(required=False)
    title = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    risk_note = serializers.CharField(required=False, allow_blank=True)
    rollback_plan = serializers.CharField(required=False)
    migration_plan = serializers.CharField(required=False, allow_blank=True)
    flags = FlagsPatchSerializer(required=False)
    golden_corpus = serializers.CharField(
        max_length=MAX_REFERENCE_LENGTH,
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text='A reference to set it; "" or null to clear it; leave it out to keep it.',
    )


class PasskeyAnswerSerializer(serializers.Serializer[Any]):
    """The authenticator's answer to a sign-off challenge."""

    challenge_id = serializers.UUIDField(
        help_text="From POST /api/v1/change-requests/{reference}/passkey-challenge/."
    )
    credential = serializers.JSONField(
        help_text="What navigator.credentials.get() returned, as JSON "
        "(PublicKeyCredential.toJSON(): id, rawId, type, response.clientDataJSON, "
        "response.authenticatorData, response.signature, response.userHandle; base64url)."
    )

    def validate_credential(self, value: Any) -> dict[str, Any]:
        return credential_json(value)


class DecisionSerializer(serializers.Serializer[Any]):
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    requirement = serializers.ChoiceField(
        choices=Requirement.choices,
        required=False,
        allow_null=True,
        default=None,
        help_text="The slot to fill; by default the first open one you hold.",
    )
    password = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        write_only=True,
        style={"input_type": "password"},
        help_text=(
            "Your current password: sign-off is deliberate. Not needed on a browser session "
            "that confirmed it within REVIEWS_REAUTH_SECONDS, nor with 'passkey'."
        ),
    )
    passkey = PasskeyAnswerSerializer(
        required=False,
        allow_null=True,
        default=None,
        help_text="Sign off with your passkey instead of the password: the answer to "
        "passkey-challenge for this very decision (same decision, requirement and comment). "
        "Required where the approval policy's passkey_required names the slot.",
    )


class RejectSerializer(DecisionSerializer):
    comment = serializers.CharField(max_length=5000, help_text="Why you reject the change.")


class SignOffChallengeInSerializer(serializers.Serializer[Any]):
    """The decision about to be signed with a passkey (it goes into the signed statement)."""

    decision = serializers.ChoiceField(choices=Decision.choices)
    requirement = serializers.ChoiceField(
        choices=Requirement.choices,
        required=False,
        allow_null=True,
        default=None,
        help_text="The slot to fill; by default the first open one you hold.",
    )
    comment = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=5000,
        help_text="The comment you will send with approve/reject (its SHA-256 is signed; "
        "required to reject).",
    )


class WithdrawSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class RerunSerializer(serializers.Serializer[Any]):
    # Checked by hand, not a ChoiceField: "kind" is also the event log's enum in the schema.
    kind = serializers.CharField(
        required=False,
        allow_null=True,
        default=None,
        help_text=f"One required check ({', '.join(CheckKind.values)}); all of them when left out.",
    )

    def validate_kind(self, value: str | None) -> str | None:
        if value is not None and value not in CheckKind.values:
            raise serializers.ValidationError(f"No check '{value}'.")
        return value


class CommentSerializer(serializers.Serializer[Any]):
    """A remark in Markdown; with ``path``, ``side`` and ``line`` together, on one line of an
    item's diff at the change's current revision."""

    body = serializers.CharField(max_length=5000, help_text="Markdown (rendered sanitised).")
    path = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=400,
        help_text="The item's artifact path (class/tenant/slug), for a line comment.",
    )
    side = serializers.ChoiceField(
        choices=DiffSide.choices,
        required=False,
        allow_blank=True,
        default="",
        help_text="old: the current version's line numbers; new: the proposed version's.",
    )
    line = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, help_text="The line number."
    )


class EvidenceSerializer(serializers.Serializer[Any]):
    """An evaluation report for one proposed version (CI sends these)."""

    version = serializers.CharField(
        max_length=MAX_REFERENCE_LENGTH, help_text="A proposed version's reference."
    )
    metrics = serializers.DictField(child=NumberField(), allow_empty=False)
    bias = serializers.DictField(required=False, default=dict)
    safety = serializers.DictField(required=False, default=dict)
    seed = serializers.CharField(required=False, allow_blank=True, default="", max_length=100)
    rng = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    test_run_ids = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, default=list
    )
    notes = serializers.CharField(required=False, allow_blank=True, default="")
    simulation = serializers.BooleanField(
        required=False,
        default=False,
        help_text="A simulation run validating downstream safety (a breaking change of an "
        "action-eligible artifact needs one).",
    )

    def validate_metrics(self, value: dict[str, Any]) -> dict[str, Any]:
        _check_json(value)
        return value

    def validate_bias(self, value: dict[str, Any]) -> dict[str, Any]:
        _check_json(value)
        return value

    def validate_safety(self, value: dict[str, Any]) -> dict[str, Any]:
        _check_json(value)
        return value


class PolicyUpdateSerializer(serializers.Serializer[Any]):
    rules = serializers.JSONField(
        help_text='The policy document: {"rules": [...], "postmortem_days": N, '
        '"passkey_required": [...]}. passkey_required (optional) lists the slots whose '
        "sign-off must be a WebAuthn assertion by the approver's own passkey instead of a "
        'password (["security_officer"]; ["*"] for every slot); it is fixed on a change when '
        "it is submitted."
    )
    reason = serializers.CharField(max_length=500)

    def validate_rules(self, value: Any) -> Any:
        _check_json(value)
        return value


class RollbackSerializer(serializers.Serializer[Any]):
    artifact = serializers.CharField(
        max_length=MAX_REFERENCE_LENGTH,
        help_text="class/tenant/slug, e.g. prompt/acme/qualify-lead",
    )
    target = serializers.CharField(
        max_length=MAX_REFERENCE_LENGTH,
        required=False,
        allow_blank=True,
        allow_null=True,
        default=None,
        help_text="A version that was active before; by default the one before the last promotion.",
    )
    reason = serializers.CharField(max_length=2000)
    override_reason = serializers.CharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        default="",
        help_text="Needed (administrators) to restore a deprecated version; recorded in the event.",
    )


class DeactivateSerializer(serializers.Serializer[Any]):
    artifact = serializers.CharField(
        max_length=MAX_REFERENCE_LENGTH,
        help_text="class/tenant/slug, e.g. prompt/acme/qualify-lead",
    )
    reason = serializers.CharField(max_length=2000)


# --- output ---------------------------------------------------------------------------------


class VersionRefSerializer(serializers.Serializer[Any]):
    path = serializers.CharField()
    version = serializers.CharField()
    sha256 = serializers.CharField(source="manifest_sha256")


class ChangeRowSerializer(serializers.ModelSerializer[ChangeRequest]):
    reference = serializers.CharField(help_text="CR-YYYY-NNNN")
    tenant = serializers.CharField(source="tenant.slug")
    # A string, not a ChoiceField: "status" names other enums in the schema too.
    status = serializers.CharField(help_text=", ".join(ChangeStatus.values))
    flags = FlagsSerializer(source="*")
    author = serializers.CharField(source="author.username")
    rolled_back_by = serializers.CharField(
        source="rolled_back_by.username",
        default=None,
        allow_null=True,
        help_text="Who rolled its promotion back (or switched off its last version).",
    )
    url = serializers.SerializerMethodField()

    class Meta:
        model = ChangeRequest
        fields = [
            "id",
            "reference",
            "tenant",
            "title",
            "change_type",
            "status",
            "revision",
            "flags",
            "author",
            "created_at",
            "submitted_at",
            "promoted_at",
            "rolled_back_at",
            "rolled_back_by",
            "url",
        ]
        read_only_fields = fields

    def get_url(self, obj: ChangeRequest) -> str:
        return f"/api/v1/change-requests/{obj.reference}/"


class ItemSerializer(serializers.Serializer[Any]):
    artifact = serializers.CharField(source="artifact.path")
    proposed = VersionRefSerializer()
    current = VersionRefSerializer(allow_null=True)


class PasskeySignatureSerializer(serializers.Serializer[Any]):
    """A passkey sign-off, checkable offline: the statement the approver's authenticator signed
    (its SHA-256 is the WebAuthn challenge) and the assertion, against the public key of
    ``credential_id`` in its passkey.registered event (``python -m governance.verify``)."""

    credential_id = serializers.CharField(help_text="The passkey's credential id (base64url).")
    name = serializers.CharField(help_text="What its owner calls the passkey.")
    statement = serializers.CharField(help_text="The approval statement (RFC 8785 JSON text).")
    statement_sha256 = serializers.CharField(help_text="SHA-256 of the statement: the challenge.")
    assertion = serializers.DictField(
        help_text="credential_id, authenticator_data, client_data_json, signature, user_handle "
        "(base64url)."
    )


def passkey_signature(approval: Approval) -> dict[str, Any] | None:
    """An approval's passkey sign-off as the API shows it; None for a password sign-off."""
    if approval.passkey_id is None or approval.passkey is None:
        return None
    return {
        "credential_id": approval.passkey.credential_id,
        "name": approval.passkey.name,
        "statement": approval.passkey_statement,
        "statement_sha256": approval.passkey_challenge,
        "assertion": approval.passkey_assertion or {},
    }


class FillerSerializer(serializers.Serializer[Any]):
    approval = serializers.UUIDField(source="id")
    approver = serializers.CharField(source="approver.username")
    at = serializers.DateTimeField(source="created_at")
    comment = serializers.CharField()
    passkey = serializers.SerializerMethodField(
        help_text="The passkey sign-off (null when signed off with a password)."
    )

    @extend_schema_field(PasskeySignatureSerializer(allow_null=True))
    def get_passkey(self, obj: Approval) -> dict[str, Any] | None:
        return passkey_signature(obj)


class SlotSerializer(serializers.Serializer[Any]):
    requirement = serializers.ChoiceField(choices=Requirement.choices)
    label = serializers.CharField()  # type: ignore[assignment]
    filled_by = FillerSerializer(source="approval", allow_null=True)
    passkey_required = serializers.BooleanField(
        help_text="Signing off in this slot needs a passkey (the approval policy's "
        "passkey_required): ask for passkey-challenge, send approve/reject with 'passkey'."
    )


class DecisionOutSerializer(serializers.ModelSerializer[Approval]):
    approver = serializers.CharField(source="approver.username")
    at = serializers.DateTimeField(source="created_at")
    passkey = serializers.SerializerMethodField(
        help_text="The passkey sign-off (null when signed off with a password)."
    )

    class Meta:
        model = Approval
        fields = [
            "id",
            "approver",
            "requirement",
            "decision",
            "comment",
            "revision",
            "at",
            "passkey",
        ]

    @extend_schema_field(PasskeySignatureSerializer(allow_null=True))
    def get_passkey(self, obj: Approval) -> dict[str, Any] | None:
        return passkey_signature(obj)


class NotCountingSerializer(DecisionOutSerializer):
    why = serializers.CharField(help_text="Why this decision does not count now.")

    class Meta(DecisionOutSerializer.Meta):
        fields = [*DecisionOutSerializer.Meta.fields, "why"]


class LiveDecisionSerializer(DecisionOutSerializer):
    counts = serializers.BooleanField(
        help_text="Whether it counts now: an approval filling its slot, or a rejection that stands."
    )
    why = serializers.CharField(
        allow_null=True,
        help_text="Why it does not count (earlier revision, role revoked, passkey revoked, "
        "signed statement mismatch, no passkey where required, slot filled); null when it counts.",
    )

    class Meta(DecisionOutSerializer.Meta):
        fields = [*DecisionOutSerializer.Meta.fields, "counts", "why"]


class SignOffChallengeSerializer(WebAuthnChallengeSerializer):
    """A passkey sign-off challenge: the statement to sign and the request options."""

    change = serializers.CharField(help_text="CR-YYYY-NNNN")
    revision = serializers.IntegerField()
    decision = serializers.CharField()
    requirement = serializers.CharField(help_text="The slot the decision fills.")
    statement = serializers.CharField(
        help_text="The approval statement (RFC 8785 JSON text): change, revision, "
        "binding_sha256, decision, requirement, approver, comment_sha256, time, rp_id, origin."
    )
    statement_sha256 = serializers.CharField(
        help_text="SHA-256 of the statement's bytes, hex; options.challenge is the same "
        "digest, base64url."
    )


class VoidedSerializer(DecisionOutSerializer):
    class Meta(DecisionOutSerializer.Meta):
        fields = [*DecisionOutSerializer.Meta.fields, "voided_at", "void_reason"]


class CheckSerializer(serializers.Serializer[Any]):
    kind = serializers.CharField(help_text=", ".join(CheckKind.values))
    label = serializers.CharField()  # type: ignore[assignment]
    status = serializers.CharField(help_text="pending, running, passed, failed, error or not_run")
    summary = serializers.CharField(allow_blank=True)
    attempt = serializers.IntegerField(allow_null=True)
    revision = serializers.IntegerField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    log = serializers.CharField(allow_blank=True)
    result = serializers.JSONField()
    passes = serializers.BooleanField(
        help_text="Whether it lets the change through now: passed, or failed under an active waiver."
    )
    waived = serializers.BooleanField(help_text="It failed and passes only under a waiver.")
    waived_by = serializers.ListField(
        child=serializers.CharField(),
        help_text="WV-YYYY-NNNN of each waiver that lets it pass now (one per metric for gates).",
    )
    blocked_by = serializers.CharField(
        allow_null=True, help_text="Why it holds the change back now (null when it passes)."
    )


class PostmortemSerializer(serializers.Serializer[Any]):
    summary = serializers.CharField(max_length=20000, help_text="What happened and what follows.")
    url = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        default="",
        help_text="An http(s) link to the full post-mortem.",
    )


class DeploymentChecklistInSerializer(serializers.Serializer[Any]):
    """The deployment checklist of the change's current revision (blank parts are refused)."""

    resource_envelope = serializers.CharField(
        max_length=10000, allow_blank=True, help_text="CPU, memory, tokens and cost it may use."
    )
    scaling_thresholds = serializers.CharField(
        max_length=10000, allow_blank=True, help_text="When it scales, and its limits."
    )
    logging_tracing = serializers.CharField(
        max_length=10000,
        allow_blank=True,
        help_text="What is logged and traced, and where it can be read.",
    )
    kill_switch = serializers.CharField(
        max_length=10000,
        allow_blank=True,
        help_text="How it is halted (the flag or toggle), and who may do it.",
    )
    notes = serializers.CharField(max_length=10000, required=False, allow_blank=True, default="")


class DeploymentChecklistSerializer(serializers.ModelSerializer[DeploymentChecklist]):
    change = serializers.CharField(source="change.reference")
    completed_by = serializers.SerializerMethodField()
    outdated = serializers.SerializerMethodField(
        help_text="True when the change was revised since (it must be completed again)."
    )

    class Meta:
        model = DeploymentChecklist
        fields = [
            "change",
            "revision",
            "outdated",
            "resource_envelope",
            "scaling_thresholds",
            "logging_tracing",
            "kill_switch",
            "notes",
            "sha256",
            "completed_by",
            "created_at",
        ]

    def get_completed_by(self, obj: DeploymentChecklist) -> str | None:
        return obj.completed_by.username if obj.completed_by else None

    def get_outdated(self, obj: DeploymentChecklist) -> bool:
        return obj.revision != obj.change.revision


class ReportSerializer(serializers.ModelSerializer[EvaluationReport]):
    version = serializers.CharField(source="version.pinned", help_text="slug:version#sha256")
    path = serializers.CharField(source="version.path")
    submitted_by = serializers.SerializerMethodField()

    class Meta:
        model = EvaluationReport
        fields = [
            "id",
            "version",
            "path",
            "metrics",
            "bias",
            "safety",
            "seed",
            "rng",
            "test_run_ids",
            "notes",
            "simulation",
            "sha256",
            "submitted_by",
            "created_at",
        ]

    def get_submitted_by(self, obj: EvaluationReport) -> str | None:
        return obj.submitted_by.username if obj.submitted_by else None


class CommentOutSerializer(serializers.ModelSerializer[Comment]):
    author = serializers.CharField(source="author.username")

    class Meta:
        model = Comment
        fields = ["author", "body", "created_at", "revision", "path", "side", "line", "line_text"]


POLICY_SCHEMA = {
    "oneOf": [{"type": "integer"}, {"type": "string", "enum": ["built-in"]}],
    "nullable": True,
    "description": 'The approval policy\'s number fixed at submission, "built-in", or null before.',
}


class RecertificationSerializer(serializers.Serializer[Any]):
    """An emergency change's re-certification (``reviews.md``)."""

    due_at = serializers.DateTimeField()
    certified_at = serializers.DateTimeField(allow_null=True)
    followup = serializers.CharField(
        allow_null=True, help_text="The normal change (CR-…) that re-certified its versions."
    )
    reminded_at = serializers.DateTimeField(allow_null=True)
    overdue = serializers.BooleanField(help_text="Not re-certified, and past due now.")


class ChangeDetailSerializer(ChangeRowSerializer):
    """Everything about one change: what is proposed, who signed off, checks, evidence, history."""

    golden_corpus = VersionRefSerializer(allow_null=True)
    promoted_by = serializers.SerializerMethodField()
    policy = serializers.SerializerMethodField()
    requirements = serializers.SerializerMethodField(
        help_text="Each required approval slot and who fills it (null when open)."
    )
    not_counting = serializers.SerializerMethodField(
        help_text="Live decisions that do not count now, with why."
    )
    approvals = serializers.SerializerMethodField(
        help_text="Every live decision (approvals and rejections of any revision, not voided), "
        "oldest first, each with its passkey sign-off (or null), whether it counts and why not."
    )
    passkey_requirements = serializers.ListField(
        child=serializers.ChoiceField(choices=Requirement.choices),
        help_text="The slots whose sign-off needs the approver's passkey, fixed at submission.",
    )
    rejections = serializers.SerializerMethodField()
    voided = serializers.SerializerMethodField(
        help_text="Decisions voided by a revision or new evidence."
    )
    items = serializers.SerializerMethodField()
    checks = serializers.SerializerMethodField(
        help_text="The newest attempt of each required check on the current revision, "
        "with whether it passes now and the waivers it passes under."
    )
    postmortem_by = serializers.SerializerMethodField()
    postmortem_overdue = serializers.SerializerMethodField(
        help_text="An emergency change whose post-mortem is past due and not recorded."
    )
    evaluation_reports = serializers.SerializerMethodField()
    recertification = serializers.SerializerMethodField(
        help_text="A promoted emergency change's re-certification (null otherwise)."
    )
    promotion_blockers = serializers.SerializerMethodField(
        help_text="What stops a promotion now (only while the change is open for review)."
    )
    comments = serializers.SerializerMethodField()
    timeline = serializers.SerializerMethodField()
    allowed = serializers.SerializerMethodField(
        help_text="What the caller may do to this change now (reviews.permissions.change_actions, "
        "the rules the services enforce); null when the answer has no caller."
    )

    class Meta(ChangeRowSerializer.Meta):
        fields = [
            *ChangeRowSerializer.Meta.fields,
            "description",
            "risk_note",
            "rollback_plan",
            "migration_plan",
            "golden_corpus",
            "binding_sha256",
            "decided_at",
            "promoted_by",
            "emergency",
            "postmortem_due_at",
            "postmortem_done_at",
            "postmortem_overdue",
            "postmortem_by",
            "postmortem_summary",
            "postmortem_url",
            "recertification",
            "policy",
            "requirements",
            "passkey_requirements",
            "approvals",
            "not_counting",
            "rejections",
            "voided",
            "items",
            "checks",
            "evaluation_reports",
            "promotion_blockers",
            "comments",
            "timeline",
            "allowed",
        ]
        read_only_fields = fields

    def to_representation(self, instance: ChangeRequest) -> dict[str, Any]:
        # Read once, used by three fields; one moment for every time-dependent field.
        self._approvals = selectors.approval_status(instance)
        self._now = timezone.now()
        return super().to_representation(instance)

    @extend_schema_field(serializers.DictField(child=serializers.BooleanField(), allow_null=True))
    def get_allowed(self, obj: ChangeRequest) -> dict[str, bool] | None:
        from reviews.permissions import change_actions

        user = self.context.get("user")
        return change_actions(user, obj).as_dict() if user is not None else None

    def get_promoted_by(self, obj: ChangeRequest) -> str | None:
        return obj.promoted_by.username if obj.promoted_by else None

    @extend_schema_field(RecertificationSerializer(allow_null=True))
    def get_recertification(self, obj: ChangeRequest) -> dict[str, Any] | None:
        found = selectors.recertification_of(obj)
        if found is None:
            return None
        return {
            "due_at": found.due_at.isoformat(),
            "certified_at": found.certified_at.isoformat() if found.certified_at else None,
            "followup": found.followup.reference if found.followup else None,
            "reminded_at": found.reminded_at.isoformat() if found.reminded_at else None,
            "overdue": found.certified_at is None and found.due_at < self._now,
        }

    def get_postmortem_by(self, obj: ChangeRequest) -> str | None:
        return obj.postmortem_by.username if obj.postmortem_by else None

    def get_postmortem_overdue(self, obj: ChangeRequest) -> bool:
        return (
            obj.postmortem_due_at is not None
            and obj.postmortem_done_at is None
            and obj.postmortem_due_at < self._now
        )

    @extend_schema_field(POLICY_SCHEMA)
    def get_policy(self, obj: ChangeRequest) -> int | str | None:
        if obj.submitted_at is None:
            return None
        return obj.policy.number if obj.policy else "built-in"

    @extend_schema_field(SlotSerializer(many=True))
    def get_requirements(self, obj: ChangeRequest) -> Any:
        rows = [
            {
                "requirement": slot.requirement,
                "label": slot.label,
                "approval": slot.approval,
                "passkey_required": selectors.passkey_required(obj, slot.requirement),
            }
            for slot in self._approvals.slots
        ]
        return SlotSerializer(rows, many=True).data

    @extend_schema_field(LiveDecisionSerializer(many=True))
    def get_approvals(self, obj: ChangeRequest) -> Any:
        why_not = {approval.pk: why for approval, why in self._approvals.not_counting}
        live = (
            obj.approvals.filter(voided_at__isnull=True)
            .select_related("approver", "passkey")
            .order_by("created_at")
        )
        rows = []
        for approval in live:
            approval.why = why_not.get(approval.pk)  # type: ignore[attr-defined]
            approval.counts = approval.pk not in why_not  # type: ignore[attr-defined]
            rows.append(approval)
        return LiveDecisionSerializer(rows, many=True).data

    @extend_schema_field(NotCountingSerializer(many=True))
    def get_not_counting(self, _obj: ChangeRequest) -> Any:
        rows = []
        for approval, why in self._approvals.not_counting:
            approval.why = why  # type: ignore[attr-defined]
            rows.append(approval)
        return NotCountingSerializer(rows, many=True).data

    @extend_schema_field(DecisionOutSerializer(many=True))
    def get_rejections(self, _obj: ChangeRequest) -> Any:
        return DecisionOutSerializer(self._approvals.rejections, many=True).data

    @extend_schema_field(VoidedSerializer(many=True))
    def get_voided(self, obj: ChangeRequest) -> Any:
        voided = (
            obj.approvals.filter(voided_at__isnull=False)
            .select_related("approver", "passkey")
            .order_by("voided_at", "created_at")
        )
        return VoidedSerializer(voided, many=True).data

    @extend_schema_field(ItemSerializer(many=True))
    def get_items(self, obj: ChangeRequest) -> Any:
        return ItemSerializer(selectors.items_of(obj), many=True).data

    @extend_schema_field(CheckSerializer(many=True))
    def get_checks(self, obj: ChangeRequest) -> Any:
        rows = [
            {
                **_check_row(verdict.kind, verdict.run),
                "passes": verdict.passes,
                "waived": verdict.waived,
                "waived_by": [w.reference for w in verdict.waivers],
                "blocked_by": verdict.blocked_by,
            }
            for verdict in selectors.check_verdicts(obj, self._now)
        ]
        return CheckSerializer(rows, many=True).data

    @extend_schema_field(ReportSerializer(many=True))
    def get_evaluation_reports(self, obj: ChangeRequest) -> Any:
        reports = selectors.evaluation_reports(obj).order_by("-created_at")
        return ReportSerializer(reports, many=True).data

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_promotion_blockers(self, obj: ChangeRequest) -> list[str]:
        return selectors.promotion_blockers(obj) if obj.status in OPEN_STATES else []

    @extend_schema_field(CommentOutSerializer(many=True))
    def get_comments(self, obj: ChangeRequest) -> Any:
        comments = obj.comments.select_related("author").order_by("created_at")
        return CommentOutSerializer(comments, many=True).data

    @extend_schema_field(HistoryEntrySerializer(many=True))
    def get_timeline(self, obj: ChangeRequest) -> Any:
        return HistoryEntrySerializer(selectors.timeline(obj), many=True).data


def _check_row(kind: str, run: CheckRun | None) -> dict[str, Any]:
    if run is None:
        return {
            "kind": kind,
            "label": check_catalog.label(kind),
            "status": "not_run",
            "summary": "",
            "attempt": None,
            "revision": None,
            "started_at": None,
            "finished_at": None,
            "log": "",
            "result": {},
        }
    return {
        "kind": kind,
        "label": check_catalog.label(kind),
        "status": CheckStatus(run.status).value,
        "summary": run.summary,
        "attempt": run.attempt,
        "revision": run.revision,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "log": run.log,
        "result": run.result,
    }


class EvidenceAttachedSerializer(ChangeDetailSerializer):
    """The change after the report was attached, with the report itself."""

    report = serializers.SerializerMethodField()

    class Meta(ChangeDetailSerializer.Meta):
        fields = ["report", *ChangeDetailSerializer.Meta.fields]
        read_only_fields = fields

    @extend_schema_field(ReportSerializer)
    def get_report(self, _obj: ChangeRequest) -> Any:
        return ReportSerializer(self.context["report"]).data


class PolicyRowSerializer(serializers.Serializer[Any]):
    number = serializers.IntegerField()
    rules = serializers.JSONField()
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)


class PolicySerializer(serializers.Serializer[Any]):
    """The approval policy in force for a tenant, and the tenant's own versions of it."""

    tenant = serializers.CharField()
    number = serializers.SerializerMethodField()
    scope = serializers.ChoiceField(
        choices=[("tenant", "tenant"), ("default", "default"), ("built-in", "built-in")],
        help_text="tenant: its own policy; default: the platform default's; built-in: neither exists.",
    )
    rules = serializers.JSONField(
        help_text='The document in force: "rules", "postmortem_days", and "passkey_required" '
        "(the slots that sign off with a passkey) when it names any."
    )
    reason = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField(allow_null=True)
    created_by = serializers.CharField(allow_null=True)
    history = PolicyRowSerializer(many=True, help_text="The tenant's own versions, newest first.")

    @extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string", "enum": ["built-in"]}]})
    def get_number(self, obj: dict[str, Any]) -> int | str:
        number: int | str = obj["number"]
        return number


class RollbackResultSerializer(serializers.Serializer[Any]):
    artifact = serializers.CharField(source="artifact.path")
    kind = serializers.CharField(help_text="rollback, or deactivation (the safety switch)")
    from_version = VersionRefSerializer(source="previous", allow_null=True)
    to_version = VersionRefSerializer(
        source="version", allow_null=True, help_text="null after a deactivation"
    )
    change = serializers.CharField(
        source="change.reference",
        default=None,
        allow_null=True,
        help_text="The change whose promotion was rolled back.",
    )
    reason = serializers.CharField()
    override_reason = serializers.CharField(
        allow_blank=True, help_text="Why a deprecated version was restored (empty otherwise)."
    )
    actor = serializers.CharField(source="actor.username", default=None, allow_null=True)
    at = serializers.DateTimeField(source="created_at")

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        # "from" is a Python keyword, so the fields are declared under other names.
        wire = {"from_version": "from", "to_version": "to"}
        return {wire.get(name, name): field for name, field in super().get_fields().items()}
