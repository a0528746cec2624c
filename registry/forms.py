"""Forms check the shape of input; services enforce the rules."""

from __future__ import annotations

from django import forms

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

    def __init__(self, *args: object, tenants: list[str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["tenant"].choices = [(t, t) for t in tenants]  # type: ignore[attr-defined]


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
