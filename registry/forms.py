"""Forms check the shape of input; services enforce the rules."""

from __future__ import annotations

from typing import Any, cast

from django import forms

from accounts.models import User
from registry.choices import ImpactChoice
from registry.models import ArtifactClass


class ArtifactForm(forms.Form):
    artifact_class = forms.ModelChoiceField(
        queryset=ArtifactClass.objects.all(), to_field_name="slug", label="Class"
    )
    tenant = forms.ChoiceField(label="Tenant")
    slug = forms.SlugField(max_length=100, label="Slug", help_text="e.g. qualify-lead")
    title = forms.CharField(max_length=200, label="Title")
    summary = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, label="Purpose"
    )
    license = forms.CharField(max_length=100, initial="proprietary", label="License")

    def __init__(self, *args: Any, tenants: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["tenant"]).choices = [(t, t) for t in tenants]


class PublishForm(forms.Form):
    content = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 16, "spellcheck": "false"}),
        required=False,
        label="Content",
        strip=False,
    )
    file = forms.FileField(required=False, label="File (for file classes)")
    impact = forms.ChoiceField(choices=ImpactChoice.choices, label="Impact")
    reason = forms.CharField(
        max_length=2000, label="Why this change", widget=forms.Textarea(attrs={"rows": 2})
    )
    version = forms.CharField(max_length=64, required=False, label="Version (blank: computed)")
    variables = forms.CharField(
        max_length=1000,
        required=False,
        label="Input variables",
        help_text="Comma-separated; end a name with ? if optional. Blank: taken from {{ variables }} in the text.",
    )
    dependencies = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        label="Depends on",
        help_text="One pinned reference per line: slug:version#sha256",
    )

    def variables_list(self) -> list[dict[str, object]] | None:
        raw = self.cleaned_data.get("variables", "").strip()
        if not raw:
            return None
        names = [n.strip() for n in raw.split(",") if n.strip()]
        return [{"name": n.rstrip("?"), "required": not n.endswith("?")} for n in names]

    def dependency_list(self) -> list[str]:
        return [
            line.strip()
            for line in self.cleaned_data.get("dependencies", "").splitlines()
            if line.strip()
        ]


# --- lifecycle: deprecation, retirement, ownership (administrators) -----------------------


class DeprecateForm(forms.Form):
    """Deprecating a version: its replacement, why, and the grace period before removal.

    The replacement is one of the artifact's other versions or a reference (another
    artifact of the same class in the tenant). ``override_reason`` is offered only once the
    service refused because active versions still depend on the version.
    """

    replacement = forms.ChoiceField(required=False, label="Replacement")
    replacement_reference = forms.CharField(
        max_length=300,
        required=False,
        label="Or a replacement reference",
        help_text="e.g. prompt/acme/qualify-lead-v2/1.0.0 (another artifact of the same class).",
    )
    reason = forms.CharField(
        max_length=5000, widget=forms.Textarea(attrs={"rows": 2}), label="Why deprecate it"
    )
    remove_after = forms.IntegerField(
        label="Grace period (days)",
        help_text="It keeps resolving until then; the scheduled sweep removes it afterwards.",
    )
    override_reason = forms.CharField(
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Override: why deprecate it although active versions depend on it",
    )

    def __init__(
        self,
        *args: Any,
        versions: list[tuple[str, str]],
        show_override: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["replacement"]).choices = [
            ("", "— choose a version, or give a reference below —"),
            *versions,
        ]
        posted = bool(self.data.get("override_reason", "").strip()) if self.is_bound else False
        self.show_override = show_override or posted
        if not self.show_override:
            del self.fields["override_reason"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        chosen = data.get("replacement") or ""
        typed = (data.get("replacement_reference") or "").strip()
        if "replacement" in self.errors or "replacement_reference" in self.errors:
            return data
        if not chosen and not typed:
            self.add_error("replacement", "Choose the version that replaces it.")
        elif chosen and typed:
            self.add_error(
                "replacement_reference", "Choose a version or give a reference, not both."
            )
        return data

    @property
    def replacement_field(self) -> str:
        """The field the replacement came from, where a refusal of it belongs."""
        typed = (self.data.get("replacement_reference") or "").strip() if self.is_bound else ""
        return "replacement_reference" if typed else "replacement"

    def replacement_value(self, artifact_path: str) -> str:
        typed = self.cleaned_data.get("replacement_reference", "").strip()
        return typed or f"{artifact_path}/{self.cleaned_data['replacement']}"


class RetireForm(forms.Form):
    rationale = forms.CharField(
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Sunset rationale",
        help_text="Why it moves to simulation-only (below its gates, superseded...).",
    )


class OwnerForm(forms.Form):
    """Handing an artifact to another active member of its tenant."""

    owner: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        queryset=None,
        to_field_name="username",
        label="New owner",
        empty_label="— choose a member —",
    )
    reason = forms.CharField(
        max_length=2000, widget=forms.Textarea(attrs={"rows": 2}), label="Why change the owner"
    )

    def __init__(self, *args: Any, members: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast("forms.ModelChoiceField[User]", self.fields["owner"]).queryset = members
