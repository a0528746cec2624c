"""Change requests: what is proposed, who approved it (bound to hashes), checks and evidence, promotions.

A change request (``CR-2026-0042``) proposes one or more registry versions, each
replacing the artifact's active version. Approvals are bound to the hash of what
was proposed and its evidence, so revising either voids them. Checks and
evaluation reports are kept as evidence. Promotions and rollbacks are
``Activation`` rows: the history of which version was active when, and why.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from governance.kernel.numbering import format_number
from governance.kernel.triggers import immutable, undeletable
from reviews.choices import (
    ActivationKind,
    ChangeStatus,
    CheckKind,
    CheckStatus,
    Decision,
    DiffSide,
    Requirement,
    RolloutStrategy,
)

USER = settings.AUTH_USER_MODEL


class ApprovalPolicy(models.Model):
    """Who must approve which change: rules as data, one immutable row per edit (tenant empty = platform default)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(
        "accounts.Tenant",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="approval_policies",
    )
    number = models.PositiveIntegerField(help_text="1, 2, 3... per tenant: the policy's version.")
    rules = models.JSONField()
    reason = models.CharField(max_length=500)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["tenant_id", "-number"]
        verbose_name_plural = "approval policies"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "number"], name="approval_policy_unique_number"
            ),
            models.UniqueConstraint(
                fields=["number"],
                condition=Q(tenant__isnull=True),
                name="approval_policy_unique_default_number",
            ),
        ]
        # A new policy is a new row: on PostgreSQL the database refuses to change or remove one.
        triggers = immutable("approval_policy")

    def __str__(self) -> str:
        scope = self.tenant.slug if self.tenant is not None else "default"
        return f"approval policy {scope} v{self.number}"


class LifecyclePolicy(models.Model):
    """The criteria each lifecycle stage asks of a version, per artifact class: data, one
    immutable row per edit (tenant empty = platform default; no row at all = the seed's table,
    ``reviews.lifecycle.DEFAULT_CRITERIA``).

    ``criteria`` is ``{"<class slug or *>": {"<stage>": ["<criterion key>", ...]}}``;
    ``enforced`` False makes the checklist advisory (shown, never refusing).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(
        "accounts.Tenant",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="lifecycle_policies",
    )
    number = models.PositiveIntegerField(help_text="1, 2, 3... per tenant: the criteria's version.")
    criteria = models.JSONField()
    enforced = models.BooleanField(default=True)
    reproducibility_tolerance = models.FloatField(
        default=0.01,
        help_text="Two evaluation runs with the same seed and RNG agree when every shared metric "
        "differs by at most this much.",
    )
    recertify_within_days = models.PositiveIntegerField(
        default=14, help_text="Days an emergency change's versions have to be re-certified."
    )
    reason = models.CharField(max_length=500)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["tenant_id", "-number"]
        verbose_name_plural = "lifecycle policies"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "number"], name="lifecycle_policy_unique_number"
            ),
            models.UniqueConstraint(
                fields=["number"],
                condition=Q(tenant__isnull=True),
                name="lifecycle_policy_unique_default_number",
            ),
        ]
        triggers = immutable("lifecycle_policy")

    def __str__(self) -> str:
        scope = self.tenant.slug if self.tenant is not None else "default"
        return f"lifecycle policy {scope} v{self.number}"


class ChangeCounter(models.Model):
    """The last change number handed out in a year, so ids read ``CR-2026-0042`` and never repeat."""

    year = models.PositiveIntegerField(primary_key=True)
    last = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["year"]

    def __str__(self) -> str:
        return f"{self.year}: {self.last}"


class ChangeRequest(models.Model):
    """A proposal to make some versions active, with its risk note, rollback plan, approvals and evidence."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    year = models.PositiveIntegerField()
    number = models.PositiveIntegerField()
    tenant = models.ForeignKey(
        "accounts.Tenant", on_delete=models.PROTECT, related_name="change_requests"
    )
    change_type = models.CharField(
        max_length=100, help_text="The artifact class of the change (its first item)."
    )
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    risk_note = models.TextField(blank=True)
    rollback_plan = models.TextField()
    migration_plan = models.TextField(
        blank=True,
        help_text="How consumers move across a breaking change (required before an "
        "action-eligible artifact's breaking change is approved).",
    )
    privacy_related = models.BooleanField(default=False)
    external_egress = models.BooleanField(
        default=False, help_text="Changes which external LLM services receive data."
    )
    emergency = models.BooleanField(default=False)
    rollout_strategy = models.CharField(
        max_length=8,
        choices=RolloutStrategy.choices,
        default=RolloutStrategy.CANARY,
        help_text="How its versions reach the application slots bound to them, once promoted.",
    )
    status = models.CharField(
        max_length=16, choices=ChangeStatus.choices, default=ChangeStatus.DRAFT
    )
    revision = models.PositiveIntegerField(
        default=1, help_text="Goes up each time what is proposed or its evidence changes."
    )
    binding_sha256 = models.CharField(
        max_length=64, blank=True, help_text="Hash of what approvals of this revision cover."
    )
    policy = models.ForeignKey(
        ApprovalPolicy, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requirements = models.JSONField(
        default=list, blank=True, help_text="Required approval slots, fixed at submission."
    )
    passkey_requirements = models.JSONField(
        default=list,
        blank=True,
        help_text="The slots whose sign-off needs the approver's passkey, fixed at submission.",
    )
    golden_corpus = models.ForeignKey(
        "registry.Version",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Golden corpus for simulation and offline evaluation.",
    )
    author = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="change_requests")
    created_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    promoted_at = models.DateTimeField(null=True, blank=True)
    promoted_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    rolled_back_at = models.DateTimeField(
        null=True, blank=True, help_text="When its promotion was rolled back (or switched off)."
    )
    rolled_back_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    postmortem_due_at = models.DateTimeField(null=True, blank=True)
    postmortem_done_at = models.DateTimeField(null=True, blank=True)
    postmortem_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    postmortem_summary = models.TextField(blank=True)
    postmortem_url = models.URLField(max_length=500, blank=True)

    class Meta:
        ordering = ["-year", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["year", "number"], name="change_request_unique_id")
        ]
        indexes = [
            models.Index(fields=["tenant", "status"], name="change_tenant_status"),
        ]

    def __str__(self) -> str:
        return self.reference

    def get_absolute_url(self) -> str:
        return reverse("reviews:change", kwargs={"reference": self.reference})

    @property
    def reference(self) -> str:
        return format_number("CR", self.year, self.number)


class ChangeItem(models.Model):
    """One artifact in a change: the proposed version and the active version it replaces."""

    change = models.ForeignKey(ChangeRequest, on_delete=models.CASCADE, related_name="items")
    artifact = models.ForeignKey(
        "registry.Artifact", on_delete=models.PROTECT, related_name="change_items"
    )
    proposed = models.ForeignKey(
        "registry.Version", on_delete=models.PROTECT, related_name="proposed_in"
    )
    current = models.ForeignKey(
        "registry.Version",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="replaced_in",
    )

    class Meta:
        ordering = ["change", "id"]
        constraints = [
            models.UniqueConstraint(fields=["change", "artifact"], name="change_item_unique")
        ]

    def __str__(self) -> str:
        return f"{self.change}: {self.proposed}"


class Approval(models.Model):
    """One person's decision on one revision of a change, filling one required slot, bound to its hash."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    change = models.ForeignKey(ChangeRequest, on_delete=models.CASCADE, related_name="approvals")
    approver = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="approvals")
    requirement = models.CharField(max_length=32, choices=Requirement.choices)
    decision = models.CharField(max_length=8, choices=Decision.choices)
    comment = models.TextField(blank=True)
    revision = models.PositiveIntegerField()
    binding_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=300, blank=True)
    # Passkey sign-off (governance.kernel.passkey_proof): the statement the approver's
    # authenticator signed, the assertion, and the SHA-256 of the statement (its challenge).
    passkey = models.ForeignKey(
        "accounts.Passkey",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="approvals",
    )
    passkey_statement = models.TextField(blank=True)
    passkey_assertion = models.JSONField(null=True, blank=True)
    passkey_challenge = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["change", "created_at"]
        constraints = [
            # One live decision per person per change: concurrent double clicks give one row.
            models.UniqueConstraint(
                fields=["change", "approver"],
                condition=Q(voided_at__isnull=True),
                name="approval_one_live_per_person",
            ),
            # A signed statement is used once: a replayed assertion finds its challenge taken.
            models.UniqueConstraint(
                fields=["passkey_challenge"],
                condition=~Q(passkey_challenge=""),
                name="approval_passkey_statement_once",
            ),
        ]
        # Voiding stamps voided_at; a decision is never removed.
        triggers = undeletable("approval")

    def __str__(self) -> str:
        return f"{self.change}: {self.decision} by {self.approver} as {self.requirement}"


class Comment(models.Model):
    """A remark on a change by its author or a reviewer, in Markdown.

    A line comment is anchored to one line of one item's diff as it was at one revision of the
    change: it shows under that line while the change is at that revision, and afterwards as
    "on revision N" with the line quoted (``line_text``), never moved to another line.
    """

    change = models.ForeignKey(ChangeRequest, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    revision = models.PositiveIntegerField(
        null=True, blank=True, help_text="The change's revision a line comment was made on."
    )
    path = models.CharField(
        max_length=400, blank=True, help_text="The artifact (class/tenant/slug) of the line."
    )
    side = models.CharField(max_length=3, choices=DiffSide.choices, blank=True)
    line = models.PositiveIntegerField(null=True, blank=True)
    line_text = models.TextField(blank=True, help_text="The line as it read, quoted once outdated.")

    class Meta:
        ordering = ["change", "created_at"]
        constraints = [
            # A comment is on the change, or on one line: all of the anchor or none of it.
            models.CheckConstraint(
                condition=(
                    Q(revision__isnull=True, path="", side="", line__isnull=True)
                    | Q(
                        revision__isnull=False,
                        line__isnull=False,
                        side__in=[DiffSide.OLD, DiffSide.NEW],
                    )
                    & ~Q(path="")
                ),
                name="comment_anchor_whole_or_absent",
            )
        ]

    def __str__(self) -> str:
        return f"{self.change}: {self.author}"

    @property
    def anchored(self) -> bool:
        return self.line is not None


class CheckRun(models.Model):
    """One run of a required check on one revision of a change; its result and log are evidence."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    change = models.ForeignKey(ChangeRequest, on_delete=models.CASCADE, related_name="checks")
    kind = models.CharField(max_length=32, choices=CheckKind.choices)
    revision = models.PositiveIntegerField()
    attempt = models.PositiveIntegerField(default=1)
    status = models.CharField(
        max_length=8, choices=CheckStatus.choices, default=CheckStatus.PENDING
    )
    summary = models.CharField(max_length=500, blank=True)
    log = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["change", "kind", "-revision", "-attempt"]
        constraints = [
            models.UniqueConstraint(
                fields=["change", "kind", "revision", "attempt"], name="check_run_unique_attempt"
            )
        ]
        # A run is filled in when it finishes (status, log, result); a run is never removed.
        triggers = undeletable("check_run")

    def __str__(self) -> str:
        return f"{self.change} {self.kind} r{self.revision}#{self.attempt}: {self.status}"


class EvaluationReport(models.Model):
    """Evaluation evidence for a version (metrics, bias and safety, seeds, test runs), kept as submitted."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    version = models.ForeignKey(
        "registry.Version", on_delete=models.PROTECT, related_name="evaluation_reports"
    )
    change = models.ForeignKey(
        ChangeRequest,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="evaluation_reports",
    )
    metrics = models.JSONField(default=dict)
    bias = models.JSONField(default=dict, blank=True)
    safety = models.JSONField(default=dict, blank=True)
    seed = models.CharField(max_length=100, blank=True)
    rng = models.CharField(max_length=200, blank=True)
    test_run_ids = models.JSONField(default=list, blank=True)
    notes = models.TextField(blank=True)
    simulation = models.BooleanField(
        default=False,
        help_text="A simulation run validating downstream safety (evidence a breaking change "
        "of an action-eligible artifact needs).",
    )
    sha256 = models.CharField(max_length=64, help_text="SHA-256 of the report's RFC 8785 form.")
    submitted_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["version", "-created_at"]
        triggers = immutable("evaluation_report")

    def __str__(self) -> str:
        return f"evaluation of {self.version} ({self.sha256[:12]})"


class ChangeGate(models.Model):
    """Thresholds an artifact class's evaluation metrics must meet in a tenant (compared with the active version)."""

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, related_name="+")
    artifact_class = models.ForeignKey(
        "registry.ArtifactClass", on_delete=models.PROTECT, related_name="+"
    )
    gates = models.JSONField(default=list)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["tenant", "artifact_class"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "artifact_class"], name="change_gate_unique_class"
            )
        ]

    def __str__(self) -> str:
        return f"gates for {self.artifact_class} in {self.tenant}"


class Activation(models.Model):
    """A version becoming the active one of its artifact: by promotion of a change, or by rollback.

    A deactivation (the safety switch) is a row with no version: from then on the artifact
    has no active version until a change is promoted or a rollback restores one.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    artifact = models.ForeignKey(
        "registry.Artifact", on_delete=models.PROTECT, related_name="activations"
    )
    version = models.ForeignKey(
        "registry.Version",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The version made active; empty for a deactivation.",
    )
    previous = models.ForeignKey(
        "registry.Version", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=ActivationKind.choices)
    change = models.ForeignKey(
        ChangeRequest,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="activations",
        help_text="The change that promoted it; for a rollback, the change being rolled back.",
    )
    reason = models.TextField(blank=True)
    override_reason = models.TextField(
        blank=True,
        help_text="Why an administrator restored a deprecated version (empty otherwise).",
    )
    actor = models.ForeignKey(USER, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["artifact", "-created_at"]
        indexes = [models.Index(fields=["artifact", "-created_at"], name="activation_recent")]
        triggers = immutable("activation")

    def __str__(self) -> str:
        return f"{self.kind}: {self.version or self.previous}"


class DeploymentChecklist(models.Model):
    """The Approved stage's deployment checklist for a change's revision, kept as completed
    (a later one for the same revision supersedes it; rows never change)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    change = models.ForeignKey(
        ChangeRequest, on_delete=models.PROTECT, related_name="deployment_checklists"
    )
    revision = models.PositiveIntegerField()
    resource_envelope = models.TextField(help_text="CPU, memory, tokens, cost: the envelope.")
    scaling_thresholds = models.TextField(help_text="When it scales, and the limits.")
    logging_tracing = models.TextField(help_text="What is logged and traced, and where.")
    kill_switch = models.TextField(help_text="How it is halted: the flag or toggle, and who.")
    notes = models.TextField(blank=True)
    sha256 = models.CharField(max_length=64, help_text="SHA-256 of the checklist's RFC 8785 form.")
    completed_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["change", "-created_at"]
        triggers = immutable("deployment_checklist")

    def __str__(self) -> str:
        return f"deployment checklist of {self.change_id} r{self.revision}"


class Recertification(models.Model):
    """An emergency change's follow-up: its versions must be re-certified by a normal change
    approved before ``due_at``. Until ``certified_at`` they show as not re-certified; the sweep
    reminds the owner and the security officers once (``reminded_at``) when it is overdue."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    emergency = models.OneToOneField(
        ChangeRequest, on_delete=models.PROTECT, related_name="recertification"
    )
    followup = models.ForeignKey(
        ChangeRequest,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="recertifies",
        help_text="The normal change request that re-certifies the same versions.",
    )
    opened_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField()
    certified_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at"]
        indexes = [models.Index(fields=["certified_at", "due_at"], name="recert_due")]
        triggers = undeletable("recertification")

    def __str__(self) -> str:
        return f"re-certification of {self.emergency_id} due {self.due_at:%Y-%m-%d}"
