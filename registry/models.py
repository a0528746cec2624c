"""The registry: artifact classes, artifacts, and their immutable, hashed, signed versions.

An artifact is ``<class>/<tenant>/<slug>``; a version is ``<class>/<tenant>/<slug>/<version>``.
A version never changes: its canonical manifest (RFC 8785 of its content digest and
metadata) is hashed and signed once, when it is published.
"""

from __future__ import annotations

import uuid
from typing import Any

import pgtrigger
from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone
from typing_extensions import override

from governance.kernel.triggers import immutable, no_truncate, undeletable
from registry.choices import ContentKind, ImpactChoice, Stage

SLUG_RE = r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$"
slug_validator = RegexValidator(SLUG_RE, "Use lowercase letters, digits and hyphens (1-100).")


class ImmutableError(Exception):
    """Raised when code tries to change or delete a published version."""


class ImmutableQuerySet(models.QuerySet["Version"]):
    @override
    def update(self, **kwargs: Any) -> int:
        raise ImmutableError("Published versions are immutable: they cannot be updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise ImmutableError("Published versions are immutable: they cannot be deleted.")


class ArtifactClass(models.Model):
    """A kind of artifact (prompt, model, routing ruleset...). Administrators add classes without code."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.CharField(max_length=100, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    content_kind = models.CharField(max_length=8, choices=ContentKind.choices)
    content_schema = models.JSONField(
        null=True,
        blank=True,
        help_text="JSON Schema every version's content must satisfy (JSON classes).",
    )
    interface_pointer = models.CharField(
        max_length=200,
        blank=True,
        help_text="JSON pointer to the interface schema inside the content (e.g. /interface); "
        "incompatible changes there are major.",
    )
    description = models.TextField(blank=True)
    builtin = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["slug"]
        verbose_name_plural = "artifact classes"

    def __str__(self) -> str:
        return self.slug


class Artifact(models.Model):
    """A named thing in a tenant (``prompt/acme/qualify-lead``) whose versions are published over time."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    artifact_class = models.ForeignKey(
        ArtifactClass, on_delete=models.PROTECT, related_name="artifacts"
    )
    tenant = models.ForeignKey(
        "accounts.Tenant", on_delete=models.PROTECT, related_name="artifacts"
    )
    slug = models.CharField(max_length=100, validators=[slug_validator])
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True, help_text="What it is for.")
    license = models.CharField(max_length=100, default="proprietary")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="owned_artifacts",
    )
    deputy = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="deputy_artifacts",
        help_text="Signs off with the owner where the approval policy asks for owner and deputy.",
    )
    action_eligible = models.BooleanField(
        default=False,
        help_text="Its output can trigger actions: compatible within a major version, reviewer "
        "sign-off always, and a safety switch that halts it while a rollback completes.",
    )
    recommended_version = models.ForeignKey(
        "Version", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    active_version = models.ForeignKey(
        "Version",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Set only by promoting a change request or by a rollback.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["tenant__slug", "artifact_class__slug", "slug"]
        constraints = [
            models.UniqueConstraint(
                fields=["artifact_class", "tenant", "slug"], name="artifact_unique_path"
            )
        ]
        indexes = [models.Index(fields=["tenant", "slug"], name="artifact_tenant_slug")]

    def __str__(self) -> str:
        return self.path

    def get_absolute_url(self) -> str:
        return reverse("registry:artifact", kwargs=self.url_kwargs())

    @property
    def path(self) -> str:
        return f"{self.artifact_class.slug}/{self.tenant.slug}/{self.slug}"

    def url_kwargs(self) -> dict[str, str]:
        return {"cls": self.artifact_class.slug, "tenant": self.tenant.slug, "slug": self.slug}


class Version(models.Model):
    """One immutable version: content, metadata, canonical manifest, its SHA-256 and Ed25519 signature."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    artifact = models.ForeignKey(Artifact, on_delete=models.PROTECT, related_name="versions")
    version = models.CharField(max_length=64)
    ordinal = models.PositiveIntegerField(
        help_text="1 for the first version; versions only move forward."
    )
    content_kind = models.CharField(max_length=8, choices=ContentKind.choices)
    content_text = models.TextField(blank=True)
    content_json = models.JSONField(null=True, blank=True)
    content_name = models.CharField(max_length=255, blank=True, help_text="Uploaded file name.")
    content_size = models.PositiveBigIntegerField(default=0)
    content_sha256 = models.CharField(max_length=64)
    input_variables = models.JSONField(default=list, blank=True)
    change_reason = models.TextField()
    declared_impact = models.CharField(max_length=8, choices=ImpactChoice.choices)
    detected_changes = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    manifest = models.BinaryField(
        help_text="RFC 8785 canonical manifest: the bytes that are hashed and signed"
    )
    manifest_sha256 = models.CharField(max_length=64, unique=True)
    key_id = models.CharField(max_length=32)
    signature = models.CharField(max_length=128)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = ImmutableQuerySet.as_manager()

    class Meta:
        ordering = ["artifact_id", "-ordinal"]
        constraints = [
            models.UniqueConstraint(
                fields=["artifact", "version"], name="version_unique_per_artifact"
            ),
            models.UniqueConstraint(fields=["artifact", "ordinal"], name="version_unique_ordinal"),
        ]
        triggers = [
            pgtrigger.Protect(
                name="version_immutable", operation=pgtrigger.Update | pgtrigger.Delete
            ),
            no_truncate("version_no_truncate"),
        ]

    def __str__(self) -> str:
        return f"{self.artifact.path}/{self.version}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ImmutableError("Published versions are immutable: they cannot be updated.")
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse(
            "registry:version", kwargs={**self.artifact.url_kwargs(), "version": self.version}
        )

    @override
    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ImmutableError("Published versions are immutable: they cannot be deleted.")

    @property
    def path(self) -> str:
        return f"{self.artifact.path}/{self.version}"

    @property
    def pinned(self) -> str:
        return f"{self.path}#{self.manifest_sha256}"


class VersionDependency(models.Model):
    """An upstream version this version was published against, pinned by hash."""

    version = models.ForeignKey(Version, on_delete=models.PROTECT, related_name="dependencies")
    upstream = models.ForeignKey(Version, on_delete=models.PROTECT, related_name="dependents")
    reference = models.CharField(max_length=300, help_text="The reference as given, pinned.")

    class Meta:
        ordering = ["version", "upstream"]
        constraints = [
            models.UniqueConstraint(fields=["version", "upstream"], name="dependency_unique")
        ]
        triggers = [
            pgtrigger.Protect(
                name="dependency_immutable", operation=pgtrigger.Update | pgtrigger.Delete
            ),
            no_truncate("dependency_no_truncate"),
        ]

    def __str__(self) -> str:
        return f"{self.version} -> {self.upstream}"


class VersionState(models.Model):
    """Where a version stands in the lifecycle; the version itself never changes, so this row does.

    A version without a row is a draft. Every change of stage is also an event.
    """

    version = models.OneToOneField(
        Version, primary_key=True, on_delete=models.PROTECT, related_name="state"
    )
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.DRAFT)
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["version"]

    def __str__(self) -> str:
        return f"{self.version_id}: {self.stage}"


class Deprecation(models.Model):
    """A version's announced end: its replacement, why, and when it stops resolving.

    Deprecated versions keep resolving until ``remove_after``; then the scheduled sweep
    stamps ``removed_at`` (hiding the version from resolution; the record stays forever).
    ``override_reason`` is set when an administrator deprecated a version that active
    versions still depended on (``dependents`` names them as they were then).
    """

    version = models.OneToOneField(
        Version, primary_key=True, on_delete=models.PROTECT, related_name="deprecation"
    )
    replacement = models.ForeignKey(Version, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    deprecated_at = models.DateTimeField(default=timezone.now)
    deprecated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    remove_after = models.DateTimeField()
    removed_at = models.DateTimeField(null=True, blank=True)
    override_reason = models.TextField(blank=True)
    dependents = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["remove_after"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(remove_after__gt=models.F("deprecated_at")),
                name="deprecation_grace_period",
            ),
            models.CheckConstraint(
                condition=~models.Q(replacement=models.F("version")),
                name="deprecation_replacement_differs",
            ),
        ]
        indexes = [
            models.Index(fields=["removed_at", "remove_after"], name="deprecation_due"),
        ]

    def __str__(self) -> str:
        return f"{self.version_id} deprecated, removed after {self.remove_after:%Y-%m-%d}"


class Retirement(models.Model):
    """A version moved to simulation-only: why, by whom, and how long its evidence is kept."""

    version = models.OneToOneField(
        Version, primary_key=True, on_delete=models.PROTECT, related_name="retirement"
    )
    rationale = models.TextField()
    retired_at = models.DateTimeField(default=timezone.now)
    retired_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    retain_until = models.DateTimeField(
        help_text="Evaluation reports and provenance are kept at least until then."
    )

    class Meta:
        ordering = ["-retired_at"]
        triggers = immutable("retirement")

    def __str__(self) -> str:
        return f"{self.version_id} retired {self.retired_at:%Y-%m-%d}"


class SafetySwitch(models.Model):
    """An action-eligible artifact halted: while a row is engaged (not released), resolution
    answers that the artifact is halted instead of naming any version. Rows are history: a
    release stamps ``released_at``; the next halt is a new row."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    artifact = models.ForeignKey(Artifact, on_delete=models.PROTECT, related_name="safety_switches")
    reason = models.TextField()
    engaged_at = models.DateTimeField(default=timezone.now)
    engaged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    release_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["artifact", "-engaged_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["artifact"],
                condition=models.Q(released_at__isnull=True),
                name="safety_switch_one_engaged",
            )
        ]
        triggers = undeletable("safety_switch")

    def __str__(self) -> str:
        state = "released" if self.released_at else "engaged"
        return f"safety switch on {self.artifact_id}: {state}"


class VersionUsage(models.Model):
    """Who still asks for a version, as reported by runtime resolution (roadmap).

    One row per version and consumer; resolution bumps ``requests`` and ``last_seen_at``.
    The deprecation pages show it beside each deprecated version so "monitor remaining
    usage" has somewhere to look; until resolution lands, nothing writes it.
    """

    version = models.ForeignKey(Version, on_delete=models.PROTECT, related_name="usage")
    consumer = models.CharField(max_length=200, help_text="Service or tenant that resolved it.")
    requests = models.PositiveBigIntegerField(default=0)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-last_seen_at"]
        constraints = [
            models.UniqueConstraint(fields=["version", "consumer"], name="usage_once_per_consumer")
        ]

    def __str__(self) -> str:
        return f"{self.consumer} → {self.version_id}: {self.requests}"
