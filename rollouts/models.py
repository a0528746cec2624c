"""The runtime half: applications and their slots, serving pointers, rollouts and their evidence.

What a slot serves is decided by pointers, in this order: a pin in the request, an active
rollout's rule for the tenant and subject, the tenant's ``Override``, else the slot's
default, which is the artifact's ``active_version`` (one truth: pages, rollback and
deprecation read the same column). Every pointer move is a ``PointerMove`` row with its
event. Only versions that went through a promoted change request may be pointed at.
"""

from __future__ import annotations

import uuid

import pgtrigger
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from governance.kernel.triggers import immutable, no_truncate, undeletable
from rollouts.choices import (
    Arm,
    PointerKind,
    PromotionTarget,
    Resolution,
    RolloutState,
    RolloutStrategy,
)
from rollouts.telemetry import LATENCY_BOUNDS_MS, LATENCY_FIELDS

USER = settings.AUTH_USER_MODEL

APP_SLUG_RE = r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$"
SLOT_NAME_RE = r"^[A-Za-z][A-Za-z0-9_-]{0,99}$"
app_slug_validator = RegexValidator(APP_SLUG_RE, "Use lowercase letters, digits and hyphens.")
slot_name_validator = RegexValidator(
    SLOT_NAME_RE, "Start with a letter; then letters, digits, '_' or '-' (at most 100)."
)


class Application(models.Model):
    """A consuming service (``sales-agent``) that reads its slots' versions from the registry.

    Owned by a tenant; an application of the platform tenant (``settings.PLATFORM_TENANT_SLUG``)
    is shared: every tenant may read its runtime configuration.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, related_name="+")
    slug = models.CharField(max_length=100, unique=True, validators=[app_slug_validator])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    def get_absolute_url(self) -> str:
        return reverse("rollouts:application", kwargs={"slug": self.slug})


class Slot(models.Model):
    """A named place in an application (``qualifyLead``) bound to one artifact.

    Its default version is the artifact's active version; tenants may override it, and
    rollouts move its pointers. A slot bound to a platform artifact serves every tenant; a
    slot bound to a tenant-private artifact serves only that tenant.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    application = models.ForeignKey(Application, on_delete=models.PROTECT, related_name="slots")
    name = models.CharField(max_length=100, validators=[slot_name_validator])
    artifact = models.ForeignKey(
        "registry.Artifact", on_delete=models.PROTECT, related_name="slots"
    )
    description = models.TextField(
        blank=True, help_text="What the slot is for and why its default."
    )
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["application__slug", "name"]
        constraints = [
            models.UniqueConstraint(fields=["application", "name"], name="slot_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.application.slug}.{self.name}"

    def get_absolute_url(self) -> str:
        return reverse("rollouts:slot", kwargs={"slug": self.application.slug, "name": self.name})


class Override(models.Model):
    """A tenant's own pointer for a slot: serves instead of the default for that tenant.

    Current state only; every change of it is a ``PointerMove``.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slot = models.ForeignKey(Slot, on_delete=models.PROTECT, related_name="overrides")
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, related_name="+")
    version = models.ForeignKey("registry.Version", on_delete=models.PROTECT, related_name="+")
    rollout = models.ForeignKey(
        "Rollout",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The tenant-scoped rollout that set it, if any.",
    )
    reason = models.TextField()
    set_at = models.DateTimeField(default=timezone.now)
    set_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["slot", "tenant__slug"]
        constraints = [
            models.UniqueConstraint(fields=["slot", "tenant"], name="override_one_per_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.slot} @ {self.tenant.slug}"


class Rollout(models.Model):
    """Bringing a promoted change's versions to production by one strategy, step by step.

    Its state changes only through ``rollouts.services`` with compare-and-swap on
    ``revision``, by the table in ``rollouts.choices.TRANSITIONS``. ``salt`` is fixed at
    creation, so raising the canary weight only adds subjects and pause/resume keeps the set.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.PositiveIntegerField(unique=True, help_text="RO-<number>, for people.")
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, related_name="+")
    change = models.ForeignKey(
        "reviews.ChangeRequest", on_delete=models.PROTECT, related_name="rollouts"
    )
    strategy = models.CharField(max_length=8, choices=RolloutStrategy.choices)
    target = models.CharField(
        max_length=8, choices=PromotionTarget.choices, default=PromotionTarget.LIVE
    )
    state = models.CharField(
        max_length=12, choices=RolloutState.choices, default=RolloutState.DRAFT
    )
    revision = models.PositiveIntegerField(default=1, help_text="Compare-and-swap counter.")
    step = models.PositiveIntegerField(default=0, help_text="0 before start; n = steps[n-1].")
    steps = models.JSONField(
        default=list,
        help_text="canary: weights in buckets of 100,000; tenant: lists of tenant slugs (waves).",
    )
    cohort = models.JSONField(default=list, blank=True, help_text="paper target: subject ids.")
    salt = models.CharField(max_length=32)
    flag_key = models.CharField(max_length=100, blank=True)
    flag_on = models.BooleanField(default=False)
    flag_expires_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True, help_text="Why it was started.")
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    finished_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    finish_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-number"]
        indexes = [models.Index(fields=["state"], name="rollout_state")]
        triggers = undeletable("rollout")

    def __str__(self) -> str:
        return self.reference

    def get_absolute_url(self) -> str:
        return reverse("rollouts:rollout", kwargs={"number": self.number})

    @property
    def reference(self) -> str:
        return f"RO-{self.number}"

    @property
    def weight(self) -> int:
        """The current canary weight in buckets (0 before the first step)."""
        if self.strategy != RolloutStrategy.CANARY or self.step == 0:
            return 0
        return int(self.steps[self.step - 1])


class RolloutTarget(models.Model):
    """One slot a rollout moves: from its baseline (stable) to the candidate. A bundle moves together."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    rollout = models.ForeignKey(Rollout, on_delete=models.PROTECT, related_name="targets")
    slot = models.ForeignKey(Slot, on_delete=models.PROTECT, related_name="rollout_targets")
    baseline = models.ForeignKey(
        "registry.Version",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The slot's default when the rollout was created (the stable arm).",
    )
    candidate = models.ForeignKey("registry.Version", on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["rollout", "slot__application__slug", "slot__name"]
        constraints = [
            models.UniqueConstraint(fields=["rollout", "slot"], name="rollout_target_once")
        ]
        triggers = immutable("rollout_target")

    def __str__(self) -> str:
        return f"{self.rollout} {self.slot}"


class PointerMove(models.Model):
    """One move of a serving pointer, with who, when and why: a slot's history. Append-only.

    ``slot`` is empty for a default move (the default belongs to the artifact, and so to
    every slot bound to it). A rollback replays a rollout's moves backwards.
    """

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=8, choices=PointerKind.choices)
    artifact = models.ForeignKey("registry.Artifact", on_delete=models.PROTECT, related_name="+")
    slot = models.ForeignKey(
        Slot, null=True, blank=True, on_delete=models.PROTECT, related_name="moves"
    )
    tenant = models.ForeignKey(
        "accounts.Tenant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    from_version = models.ForeignKey(
        "registry.Version", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    to_version = models.ForeignKey(
        "registry.Version", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    weight = models.PositiveIntegerField(null=True, blank=True, help_text="Canary weight after.")
    rollout = models.ForeignKey(
        Rollout, null=True, blank=True, on_delete=models.PROTECT, related_name="moves"
    )
    reason = models.TextField()
    actor = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["artifact", "-id"], name="pointer_move_artifact")]
        triggers = immutable("pointer_move")

    def __str__(self) -> str:
        return f"{self.kind} {self.artifact_id} -> {self.to_version_id}"


class ManifestVersion(models.Model):
    """One version of a rollout's phase manifest (rollout-phase-manifest.md), hashed into the log."""

    id = models.BigAutoField(primary_key=True)
    rollout = models.ForeignKey(Rollout, on_delete=models.PROTECT, related_name="manifests")
    number = models.PositiveIntegerField()
    body = models.JSONField()
    sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=4, help_text="pass or fail, derived from the phases.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["rollout", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["rollout", "number"], name="manifest_version_once")
        ]
        triggers = immutable("manifest_version")

    def __str__(self) -> str:
        return f"{self.rollout} manifest {self.number}"


class IterationNote(models.Model):
    """What one controller cycle did for a rollout (``notes/iteration-<n>.md``)."""

    id = models.BigAutoField(primary_key=True)
    rollout = models.ForeignKey(Rollout, on_delete=models.PROTECT, related_name="notes")
    number = models.PositiveIntegerField()
    outcome = models.CharField(max_length=24)
    reason = models.TextField()
    manifest = models.ForeignKey(ManifestVersion, on_delete=models.PROTECT, related_name="+")
    rollback_evidence = models.CharField(max_length=300, blank=True)
    trace_ids = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["rollout", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["rollout", "number"], name="iteration_note_once")
        ]
        triggers = immutable("iteration_note")

    def __str__(self) -> str:
        return f"{self.rollout} iteration {self.number}"


class DeploymentDrift(models.Model):
    """One episode of a client running other content than the registry approved for its slot.

    Clients may report, with their telemetry, the manifest hash of what they actually run
    (``manifest_sha256``). A report that differs from the approved hash of the version it
    names (``Version.manifest_sha256``, the hash the resolve answer carried) opens an
    episode for the reporting tenant and the slot (at most one open: a partial unique
    constraint), with a ``runtime.drift_detected`` event and the owner notified once; it is
    resolved (``runtime.drift_resolved``) when matching reports arrive and no differing one
    came for ``TELEMETRY_DRIFT_RESOLVE_SECONDS``. Written by ``rollouts.drift``.
    """

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, related_name="+")
    slot = models.ForeignKey(Slot, on_delete=models.PROTECT, related_name="drifts")
    version = models.ForeignKey(
        "registry.Version",
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The version the client said it served.",
    )
    approved_sha256 = models.CharField(max_length=64)
    reported_sha256 = models.CharField(max_length=64, help_text="The newest differing hash.")
    requests = models.PositiveBigIntegerField(
        default=0, help_text="Requests reported with a differing hash in this episode."
    )
    detected_at = models.DateTimeField(default=timezone.now)
    last_reported_at = models.DateTimeField(
        default=timezone.now, help_text="When a differing hash was last reported."
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-detected_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "slot"],
                condition=models.Q(resolved_at__isnull=True),
                name="deployment_drift_one_open",
            )
        ]
        indexes = [models.Index(fields=["slot", "resolved_at"], name="deployment_drift_slot")]

    def __str__(self) -> str:
        return f"{self.slot} @ {self.tenant_id}: {self.reported_sha256[:12]}"

    def get_absolute_url(self) -> str:
        return self.slot.get_absolute_url()


# --- telemetry (measurement, not governance state) ------------------------------------


class TelemetryBatch(models.Model):
    """One accepted telemetry batch: its client-chosen ``batch_id`` makes a retry count once.

    Written once by ``telemetry_ingest`` and never changed (UPDATE and TRUNCATE refused);
    a retried batch (same tenant and ``batch_id``) finds this row and is answered
    "duplicate" without storing anything. The sweep deletes a batch once it is older than
    ``TELEMETRY_RAW_RETENTION_HOURS`` and its raw rows are folded (bounded storage; clients
    retry within minutes, not days).
    """

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, related_name="+")
    batch_id = models.CharField(max_length=100)
    token = models.ForeignKey(
        "accounts.ServiceToken",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The service token that sent it (empty when sent by code, e.g. a test or seed).",
    )
    rows = models.PositiveIntegerField()
    requests = models.PositiveBigIntegerField(default=0, help_text="Requests over its rows.")
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "batch_id"], name="telemetry_batch_once")
        ]
        indexes = [models.Index(fields=["received_at"], name="telemetry_batch_received")]
        triggers = [
            pgtrigger.Protect(name="telemetry_batch_no_update", operation=pgtrigger.Update),
            no_truncate("telemetry_batch_no_truncate"),
        ]

    def __str__(self) -> str:
        return f"{self.batch_id} ({self.rows} rows)"


class TelemetryCounter(models.Model):
    """Counters of one (tenant, application, slot, version, rollout, arm) over one time bucket.

    Append-only raw rows: ingest is one bulk INSERT, never an upsert, so concurrent batches
    never contend on a row; readers sum. ``resolution`` is ``raw`` (a bucket of
    ``TELEMETRY_BUCKET_SECONDS`` as sent) or ``hour`` (raw rows older than
    ``TELEMETRY_RAW_RETENTION_HOURS`` folded by the sweep, so storage stays bounded).

    Protection: UPDATE and TRUNCATE are refused by triggers, and so is DELETE, except for
    the fold (``telemetry_fold``), which inserts the hour rows and deletes the raw rows it
    summed in one transaction with the delete trigger ignored for that statement
    (``pgtrigger.ignore``). Folding by deletion rather than by marking keeps the table
    small, which is the point of the rollup; totals are unchanged by a fold (tested).

    Telemetry is measurement, not governance state: no governance event is written per row
    or per batch (the hot path); what it leads to (a pause, a rollback) is an event.

    The latency histogram is one column per bound of ``LATENCY_BOUNDS_MS`` (``latency_le_50``
    ... ``latency_over``), so sums and percentiles are read in SQL without JSON.
    """

    id = models.BigAutoField(primary_key=True)
    # No database FK constraints (db_constraint=False): PostgreSQL would check each of them
    # for every inserted row at commit (6,000 lookups and key-share locks for 1,000 rows).
    # ``telemetry_ingest`` checks every reference in the same transaction, and none of these
    # rows is ever deleted (PROTECT; rollouts are undeletable, versions immutable).
    tenant = models.ForeignKey(
        "accounts.Tenant", on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    application = models.ForeignKey(
        Application, on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    slot = models.ForeignKey(Slot, on_delete=models.PROTECT, related_name="+", db_constraint=False)
    version = models.ForeignKey(
        "registry.Version", on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    rollout = models.ForeignKey(
        Rollout,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
    )
    arm = models.CharField(
        max_length=8, choices=Arm.choices, blank=True, help_text="Empty when no rollout."
    )
    bucket_start = models.DateTimeField(
        help_text="Aligned to TELEMETRY_BUCKET_SECONDS (raw) or an hour."
    )
    resolution = models.CharField(max_length=4, choices=Resolution.choices, default=Resolution.RAW)
    batch = models.ForeignKey(
        TelemetryBatch,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="counters",
        db_constraint=False,
        help_text="The batch that brought it (empty for folded hour rows).",
    )
    requests = models.PositiveBigIntegerField(default=0)
    errors = models.PositiveBigIntegerField(default=0)
    refusals = models.PositiveBigIntegerField(default=0)
    policy_violations = models.PositiveBigIntegerField(default=0)
    latency_slo_breaches = models.PositiveBigIntegerField(default=0)
    latency_le_50 = models.PositiveBigIntegerField(default=0)
    latency_le_100 = models.PositiveBigIntegerField(default=0)
    latency_le_250 = models.PositiveBigIntegerField(default=0)
    latency_le_500 = models.PositiveBigIntegerField(default=0)
    latency_le_1000 = models.PositiveBigIntegerField(default=0)
    latency_le_2500 = models.PositiveBigIntegerField(default=0)
    latency_le_5000 = models.PositiveBigIntegerField(default=0)
    latency_le_10000 = models.PositiveBigIntegerField(default=0)
    latency_over = models.PositiveBigIntegerField(default=0, help_text="Slower than 10 s.")
    cost = models.FloatField(default=0.0, help_text="Currency units.")
    quality_sum = models.FloatField(default=0.0)
    quality_sumsq = models.FloatField(default=0.0)
    quality_n = models.PositiveBigIntegerField(default=0)
    snapshot_sequence = models.PositiveBigIntegerField(
        default=0,
        help_text="The runtime snapshot sequence the client served from (max over folded rows).",
    )
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-bucket_start", "-id"]
        indexes = [
            models.Index(fields=["rollout", "arm", "bucket_start"], name="telemetry_rollout_arm"),
            models.Index(fields=["version", "bucket_start"], name="telemetry_version"),
            models.Index(fields=["tenant", "bucket_start"], name="telemetry_tenant"),
            models.Index(fields=["resolution", "bucket_start"], name="telemetry_resolution"),
        ]
        triggers = [
            pgtrigger.Protect(name="telemetry_counter_no_update", operation=pgtrigger.Update),
            pgtrigger.Protect(name="telemetry_counter_no_delete", operation=pgtrigger.Delete),
            no_truncate("telemetry_counter_no_truncate"),
        ]

    def __str__(self) -> str:
        return f"{self.version_id} {self.arm or '-'} @ {self.bucket_start:%Y-%m-%d %H:%M}"

    @property
    def histogram(self) -> list[int]:
        return [getattr(self, name) for name in LATENCY_FIELDS]


# The histogram's columns follow LATENCY_BOUNDS_MS; a new bound needs a column and a migration.
if len(LATENCY_FIELDS) != len(LATENCY_BOUNDS_MS) or not all(
    hasattr(TelemetryCounter, name) for name in LATENCY_FIELDS
):
    raise ImproperlyConfigured("TelemetryCounter's latency columns do not match LATENCY_BOUNDS_MS")
