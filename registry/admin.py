"""Admin for the registry. Classes are added through the service; versions are read-only."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from typing_extensions import override

from accounts.admin import REASON_HELP, refused
from accounts.models import User
from governance.kernel.admin import ReadOnlyAdmin
from governance.kernel.errors import DomainError
from registry import services
from registry.models import (
    Artifact,
    ArtifactClass,
    Deprecation,
    Retirement,
    SafetySwitch,
    Version,
)


class ArtifactClassAdminForm(forms.ModelForm[ArtifactClass]):
    change_reason = forms.CharField(
        max_length=500, required=False, label="Why", help_text=REASON_HELP
    )

    class Meta:
        model = ArtifactClass
        fields = [
            "slug",
            "name",
            "content_kind",
            "content_schema",
            "interface_pointer",
            "description",
        ]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        try:
            services.artifact_class_check(
                content_schema=data.get("content_schema"),
                interface_pointer=data.get("interface_pointer") or "",
            )
        except DomainError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return data


@admin.register(ArtifactClass)
class ArtifactClassAdmin(admin.ModelAdmin[ArtifactClass]):
    form = ArtifactClassAdminForm
    list_display = ("slug", "name", "content_kind", "interface_pointer", "builtin")
    readonly_fields = ("builtin", "created_at", "created_by")

    @override
    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # A class's slug and kind are part of every artifact's identity: fixed once made.
        return (*self.readonly_fields, "slug", "content_kind") if obj else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: ArtifactClass, form: Any, change: bool) -> None:
        if change:
            try:
                services.artifact_class_update(
                    artifact_class=obj,
                    name=obj.name,
                    description=obj.description,
                    content_schema=obj.content_schema,
                    interface_pointer=obj.interface_pointer,
                    actor=cast(User, request.user),
                    reason=form.cleaned_data.get("change_reason", ""),
                )
            except DomainError as exc:
                raise refused(exc) from exc
            return
        try:
            made = services.artifact_class_create(
                slug=obj.slug,
                name=obj.name,
                content_kind=obj.content_kind,
                content_schema=obj.content_schema,
                interface_pointer=obj.interface_pointer,
                description=obj.description,
                actor=cast(User, request.user),
            )
        except DomainError as exc:
            raise forms.ValidationError(str(exc)) from exc
        obj.pk = made.pk

    @override
    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Artifact)
class ArtifactAdmin(ReadOnlyAdmin):
    """Read-only: artifacts are created through the registry pages, API or CLI."""

    list_display = (
        "slug",
        "artifact_class",
        "tenant",
        "title",
        "owner",
        "action_eligible",
        "recommended_version",
    )
    list_filter = ("artifact_class", "tenant", "action_eligible")
    search_fields = ("slug", "title")
    list_select_related = ("artifact_class", "tenant", "owner", "recommended_version")


@admin.register(Version)
class VersionAdmin(ReadOnlyAdmin):
    """Read-only: published versions never change."""

    list_display = (
        "artifact",
        "version",
        "declared_impact",
        "created_at",
        "created_by",
        "manifest_sha256",
    )
    list_select_related = ("artifact__artifact_class", "artifact__tenant", "created_by")
    exclude = ("manifest",)


@admin.register(Deprecation)
class DeprecationAdmin(ReadOnlyAdmin):
    """Read-only: deprecation and retirement go through the services (pages, API, CLI)."""

    list_display = ("version", "replacement", "deprecated_at", "remove_after", "removed_at")
    list_select_related = (
        "version__artifact__artifact_class",
        "version__artifact__tenant",
        "replacement__artifact__artifact_class",
        "replacement__artifact__tenant",
    )


@admin.register(Retirement)
class RetirementAdmin(ReadOnlyAdmin):
    list_display = ("version", "retired_at", "retain_until")
    list_select_related = ("version__artifact__artifact_class", "version__artifact__tenant")


@admin.register(SafetySwitch)
class SafetySwitchAdmin(ReadOnlyAdmin):
    """Read-only: halts are engaged and released through the services (page, API, CLI)."""

    list_display = ("artifact", "engaged_at", "engaged_by", "released_at", "released_by")
    list_filter = ("artifact__tenant",)
    list_select_related = (
        "artifact__artifact_class",
        "artifact__tenant",
        "engaged_by",
        "released_by",
    )
