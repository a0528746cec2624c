"""Forms check the shape of input; services enforce the rules."""

from __future__ import annotations

import json
from typing import Any, cast

from django import forms

from accounts.models import User
from governance.kernel.forms import PasswordMixin, entries, lines, name_values
from registry.choices import ContentKind, Determinism, ImpactChoice
from registry.models import ArtifactClass, Version
from registry.services import LIFECYCLE_METADATA_KEYS


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

    pinned_models = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        required=False,
        label="Pinned models",
        help_text="One model identifier per line (or comma-separated), e.g. "
        "gpt-4o-2024-08-06. A prompt needs at least one to pass the model-pins check.",
    )
    template_refs = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        required=False,
        label="Template references",
        help_text="One pinned prompt or response template per line: slug:version#sha256.",
    )
    policy_pack_hash = forms.CharField(
        max_length=64,
        required=False,
        label="Policy pack hash",
        help_text="The full SHA-256 of one of the tenant's policy-pack versions (64 hex digits).",
    )
    environment_fingerprint = forms.CharField(
        max_length=500,
        required=False,
        label="Environment fingerprint",
        help_text="What the version was built and evaluated with (free text).",
    )
    labels = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        required=False,
        label="Labels",
        help_text="One per line: name=value (e.g. group=sales).",
    )
    # Lifecycle evidence and provenance (docs/registry.md, "The evidence a version carries").
    determinism = forms.ChoiceField(
        choices=[("", "— not classified —"), *Determinism.choices],
        required=False,
        label="Classification",
        help_text="Deterministic (same input, same output) or probabilistic.",
    )
    evaluation_plan = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=4000,
        required=False,
        label="Evaluation plan",
        help_text="How it will be evaluated; may name an evaluation-suite version.",
    )
    risk_note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=4000,
        required=False,
        label="Risk note",
    )
    no_datasets = forms.CharField(
        max_length=2000,
        required=False,
        label="Uses no dataset because",
        help_text="Say why, if this version uses no dataset (then it cannot depend on one). "
        "Otherwise list its dataset versions under Depends on.",
    )
    pr_url = forms.CharField(
        max_length=500,
        required=False,
        label="Pull request",
        help_text="The http(s) address of the pull request behind this version "
        "(not carried over from the version it starts from).",
    )
    io_schema = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        required=False,
        label="Input/output schema",
        help_text='JSON: {"input": {JSON Schema}, "output": {JSON Schema}}.',
    )

    #: The fields that become the version's metadata (the publish API's ``metadata`` object).
    METADATA_FIELDS = (
        "pinned_models",
        "template_refs",
        "policy_pack_hash",
        "environment_fingerprint",
        "labels",
        *LIFECYCLE_METADATA_KEYS,
    )
    #: Of those, the lifecycle evidence and provenance (shown in their own fieldset).
    EVIDENCE_FIELDS = LIFECYCLE_METADATA_KEYS

    @staticmethod
    def initial_for(version: Version | None) -> dict[str, Any]:
        """The fields as ``version`` carries them: the form edits it as a new version."""
        if version is None:
            return {}
        if version.content_kind == ContentKind.TEXT:
            content = version.content_text
        elif version.content_kind == ContentKind.JSON:
            content = json.dumps(version.content_json, indent=2)
        else:
            content = ""
        variables = ", ".join(
            v["name"] + ("" if v.get("required", True) else "?") for v in version.input_variables
        )
        meta = version.metadata or {}
        labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
        return {
            "content": content,
            "variables": variables,
            "dependencies": "\n".join(d.reference for d in version.dependencies.all()),
            "pinned_models": "\n".join(str(m) for m in meta.get("pinned_models") or []),
            "template_refs": "\n".join(str(r) for r in meta.get("template_refs") or []),
            "policy_pack_hash": meta.get("policy_pack_hash", ""),
            "environment_fingerprint": meta.get("environment_fingerprint", ""),
            "labels": "\n".join(f"{k}={v}" for k, v in (labels or {}).items()),
            # A new version keeps the evidence it starts from; its pull request is its own.
            "determinism": meta.get("determinism", ""),
            "evaluation_plan": meta.get("evaluation_plan", ""),
            "risk_note": meta.get("risk_note", ""),
            "no_datasets": meta.get("no_datasets", ""),
            "io_schema": json.dumps(meta["io_schema"], indent=2) if "io_schema" in meta else "",
        }

    def clean_pinned_models(self) -> list[str]:
        names = entries(self.cleaned_data.get("pinned_models", ""))
        for name in names:
            if any(c.isspace() for c in name) or len(name) > 200:
                raise forms.ValidationError(
                    f"'{name[:200]}' is not a model identifier (no spaces, at most 200 characters)."
                )
        return list(dict.fromkeys(names))

    def clean_policy_pack_hash(self) -> str:
        return str(self.cleaned_data.get("policy_pack_hash", "")).strip().lower()

    def clean_labels(self) -> dict[str, str]:
        return name_values(self.cleaned_data.get("labels", ""), blank_values=True, noun="Label")

    def clean_io_schema(self) -> Any:
        raw = str(self.cleaned_data.get("io_schema", "")).strip()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from exc

    def metadata(self) -> dict[str, Any]:
        """The metadata the service checks and signs; an empty part is left out."""
        data = self.cleaned_data
        meta: dict[str, Any] = {
            "pinned_models": data.get("pinned_models") or [],
            "template_refs": lines(data.get("template_refs", "")),
            "policy_pack_hash": data.get("policy_pack_hash", ""),
            "environment_fingerprint": data.get("environment_fingerprint", "").strip(),
            "labels": data.get("labels") or {},
            "determinism": data.get("determinism", ""),
            "evaluation_plan": data.get("evaluation_plan", "").strip(),
            "risk_note": data.get("risk_note", "").strip(),
            "no_datasets": data.get("no_datasets", "").strip(),
            "pr_url": data.get("pr_url", "").strip(),
            "io_schema": data.get("io_schema"),
        }
        # io_schema is kept whenever JSON was given, so a wrong shape ({} too) is refused, not dropped.
        return {
            key: value
            for key, value in meta.items()
            if value or (key == "io_schema" and value is not None)
        }

    def variables_list(self) -> list[dict[str, object]] | None:
        raw = self.cleaned_data.get("variables", "").strip()
        if not raw:
            return None
        names = [n.strip() for n in raw.split(",") if n.strip()]
        return [{"name": n.rstrip("?"), "required": not n.endswith("?")} for n in names]

    def dependency_list(self) -> list[str]:
        return lines(self.cleaned_data.get("dependencies", ""))


# --- lifecycle: deprecation, retirement, ownership (administrators) -----------------------


class DeprecateForm(PasswordMixin):
    """Deprecating a version: its replacement, why, and the grace period before removal.

    The replacement is one of the artifact's other versions or a reference (another
    artifact of the same class in the tenant). ``override_reason`` is offered only once the
    service refused because active versions still depend on the version.
    """

    field_order = [
        "replacement",
        "replacement_reference",
        "reason",
        "remove_after",
        "override_reason",
    ]

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


class RetireForm(PasswordMixin):
    """Retiring a version to simulation-only: why, and the password (a deliberate act)."""

    field_order = ["rationale"]

    rationale = forms.CharField(
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Sunset rationale",
        help_text="Why it moves to simulation-only (below its gates, superseded...).",
    )


class DescribeForm(forms.Form):
    """An artifact's title and summary (what it is for), as its owner keeps them true."""

    title = forms.CharField(max_length=200, label="Title")
    summary = forms.CharField(
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        label="Summary",
        help_text="What it is for (the Draft stage's inventory entry asks for one).",
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


# --- action-eligible artifacts: the flag, the deputy, the safety switch ----------------------


class ActionEligibleForm(forms.Form):
    """Marking an artifact action-eligible (or not), with why."""

    value = forms.TypedChoiceField(
        choices=[("on", "Action-eligible"), ("off", "Not action-eligible")],
        coerce=lambda v: v == "on",
        label="Its output",
    )
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}), label="Why")


class DeputyForm(forms.Form):
    """Naming the owner's deputy (an active member of the tenant), or none."""

    deputy: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        queryset=None,
        to_field_name="username",
        required=False,
        label="Deputy",
        empty_label="— nobody —",
    )

    def __init__(self, *args: Any, members: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast("forms.ModelChoiceField[User]", self.fields["deputy"]).queryset = members


class SafetySwitchForm(PasswordMixin):
    """Engaging or releasing the safety switch: why, and the password (a deliberate act)."""

    field_order = ["reason"]

    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}), label="Why")
