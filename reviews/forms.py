"""Forms and filters of the review pages: they check the shape of input; services enforce the rules."""

from __future__ import annotations

import json
from typing import Any, cast

from django import forms

from governance.kernel.forms import TEXTAREA, PasswordMixin, entries, lines, name_values
from registry.models import Artifact
from reviews.choices import CheckKind, DiffSide, Requirement
from reviews.models import Activation, ChangeRequest


def _choices(form: forms.Form, name: str) -> forms.ChoiceField:
    """A form's choice field, by name (``form.fields`` only knows them as fields)."""
    return cast(forms.ChoiceField, form.fields[name])


class ChangeForm(forms.Form):
    """Opening a change: what is proposed, why, the risk, and how to go back."""

    tenant = forms.ChoiceField(label="Tenant")
    title = forms.CharField(max_length=200, label="Title")
    description = forms.CharField(widget=TEXTAREA, required=False, label="Description")
    risk_note = forms.CharField(widget=TEXTAREA, required=False, label="Risk note")
    rollback_plan = forms.CharField(widget=TEXTAREA, label="Rollback plan")
    migration_plan = forms.CharField(
        widget=TEXTAREA,
        required=False,
        label="Migration plan",
        help_text="How consumers move across a breaking change (needed before a breaking "
        "change of an action-eligible artifact is approved).",
    )
    proposed = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        label="Proposed versions",
        help_text="One reference per line, e.g. qualify-lead@1.1.0 or prompt/acme/qualify-lead/1.1.0.",
    )
    privacy_related = forms.BooleanField(required=False, label="Privacy-related")
    external_egress = forms.BooleanField(
        required=False, label="Changes which external LLM services receive data"
    )
    emergency = forms.BooleanField(
        required=False,
        label="Emergency change",
        help_text="Reviewed on the emergency path of the approval policy; a postmortem is due after promotion.",
    )
    golden_corpus = forms.CharField(
        max_length=300,
        required=False,
        label="Golden corpus",
        help_text="A golden-corpus version to simulate and evaluate against, e.g. leads@1.0.0.",
    )

    def __init__(self, *args: Any, tenants: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if tenants is None:
            del self.fields["tenant"]
        else:
            _choices(self, "tenant").choices = [(t, t) for t in tenants]

    def proposed_list(self) -> list[str]:
        return lines(self.cleaned_data.get("proposed", ""))

    def clean_proposed(self) -> str:
        text: str = self.cleaned_data["proposed"]
        if not lines(text):
            raise forms.ValidationError("Propose at least one version.")
        return text


class ReviseForm(ChangeForm):
    """Revising a change: a new revision, back to draft, every live decision voided."""

    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Why revise",
        help_text="Revising voids every approval of this change.",
    )

    field_order = ["reason"]

    @staticmethod
    def initial_for(change: ChangeRequest, items: list[Any]) -> dict[str, Any]:
        return {
            "title": change.title,
            "description": change.description,
            "risk_note": change.risk_note,
            "rollback_plan": change.rollback_plan,
            "migration_plan": change.migration_plan,
            "proposed": "\n".join(i.proposed.path for i in items),
            "privacy_related": change.privacy_related,
            "external_egress": change.external_egress,
            "emergency": change.emergency,
            "golden_corpus": change.golden_corpus.path if change.golden_corpus else "",
        }


class DecisionForm(forms.Form):
    """A sign-off: approve or reject, in one of the slots the approver can fill, with the password if due."""

    requirement = forms.ChoiceField(label="Sign off as", required=False)
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        label="Comment",
        help_text="Required when you reject.",
        max_length=5000,
    )
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        required=False,
        label="Your password",
        help_text="Sign-off is a deliberate act: confirm your password (remembered for a few minutes).",
    )

    # A passkey sign-off (static/js/passkeys.js fills these): the challenge the server issued
    # (reviews.services.sign_off_challenge) and the credential JSON navigator.credentials.get
    # gave. With them no password is asked: the signature is the deliberate act.
    passkey_challenge = forms.CharField(widget=forms.HiddenInput, required=False, max_length=64)
    passkey_credential = forms.CharField(widget=forms.HiddenInput, required=False, max_length=20000)

    def __init__(self, *args: Any, slots: list[str], needs_password: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [(s, Requirement(s).label) for s in slots]
        _choices(self, "requirement").choices = choices
        if not needs_password:
            del self.fields["password"]

    @property
    def needs_password(self) -> bool:
        return "password" in self.fields

    def clean_passkey_credential(self) -> dict[str, Any] | None:
        raw = self.cleaned_data.get("passkey_credential") or ""
        if not raw:
            return None
        try:
            credential = json.loads(raw)
        except ValueError:
            credential = None
        if not isinstance(credential, dict):
            raise forms.ValidationError("The passkey's answer is not the JSON the browser made.")
        return credential

    def clean(self) -> dict[str, Any] | None:
        data = super().clean()
        if data is not None and bool(data.get("passkey_challenge")) != bool(
            data.get("passkey_credential")
        ):
            self.add_error(
                "passkey_credential",
                "A passkey sign-off needs both the challenge and the passkey's answer; sign again.",
            )
        return data

    @property
    def signs_with_passkey(self) -> bool:
        """Whether this posted form carries a passkey answer (before validation too)."""
        return bool(self.data.get("passkey_challenge"))


class CommentForm(forms.Form):
    """A remark in Markdown; the hidden fields anchor it to one line of an item's diff (the
    line numbers on the change page link here with them filled in)."""

    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=5000,
        label="Add a comment",
        help_text="Markdown: **bold**, _italic_, `code`, lists, links.",
    )
    path = forms.CharField(widget=forms.HiddenInput, required=False, max_length=400)
    side = forms.ChoiceField(
        widget=forms.HiddenInput, required=False, choices=[("", ""), *DiffSide.choices]
    )
    line = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=1)


class WithdrawForm(forms.Form):
    reason = forms.CharField(max_length=500, required=False, label="Why withdraw")


class RerunForm(forms.Form):
    kind = forms.ChoiceField(choices=[("", "all"), *CheckKind.choices], required=False)


class PasswordConfirmForm(forms.Form):
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        label="Your password",
    )


class RollbackForm(PasswordMixin):
    """Going back to a version that was active before (no approvals needed), with a reason."""

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), max_length=2000, label="Why roll back"
    )
    target = forms.ChoiceField(
        required=False,
        label="Go back to",
        help_text="Only versions that were active before can be restored without approvals.",
    )
    override_reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        required=False,
        label="Override reason",
        help_text="Needed only to restore a deprecated version; it is recorded.",
    )

    field_order = ["target", "reason", "override_reason", "password"]

    def __init__(self, *args: Any, artifact: Artifact, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.artifact = artifact
        # One query: every version that was ever active, newest activation first.
        seen: dict[str, str] = {}
        rows = Activation.objects.filter(artifact=artifact, version__isnull=False).select_related(
            "version"
        )
        if artifact.active_version_id is not None:
            rows = rows.exclude(version_id=artifact.active_version_id)
        for row in rows.order_by("-created_at"):
            if row.version is not None:
                seen.setdefault(row.version.version, row.version.version)
        self.targets = list(seen)
        _choices(self, "target").choices = [
            ("", "the version active before the last promotion"),
            *seen.items(),
        ]

    @property
    def has_targets(self) -> bool:
        """Whether any other version was ever active (else there is nothing to go back to)."""
        return bool(self.targets)

    def target_reference(self) -> str | None:
        version = self.cleaned_data.get("target")
        return f"{self.artifact.path}/{version}" if version else None


class DeactivateForm(PasswordMixin):
    """The safety switch: take an artifact out of service (no active version), with a reason."""

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), max_length=2000, label="Why switch it off"
    )


class PromoteForm(PasswordMixin):
    """Promotion: nothing but the password (the page shows what will change)."""


class PolicyForm(forms.Form):
    rules = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false"}),
        label="Policy (JSON)",
        help_text='An object with "rules" (a list) and "postmortem_days".',
    )
    reason = forms.CharField(max_length=500, label="Why change it")

    def clean_rules(self) -> Any:
        try:
            return json.loads(self.cleaned_data["rules"])
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"Not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
            ) from exc


class PostmortemForm(forms.Form):
    """Closing an emergency change's follow-up: what the post-mortem found, and where it is."""

    summary = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), max_length=20000, label="Post-mortem summary"
    )
    url = forms.CharField(
        max_length=500,
        required=False,
        label="Link to the post-mortem",
        help_text="An http(s) link to the full write-up (optional).",
    )


class DeploymentChecklistForm(forms.Form):
    """The Approved stage's deployment checklist, from the change page (``deployment_checklist_complete``)."""

    resource_envelope = forms.CharField(
        widget=TEXTAREA,
        max_length=10000,
        label="Resource envelope",
        help_text="CPU, memory, tokens and cost it may use.",
    )
    scaling_thresholds = forms.CharField(
        widget=TEXTAREA,
        max_length=10000,
        label="Scaling thresholds",
        help_text="When it scales, and its limits.",
    )
    logging_tracing = forms.CharField(
        widget=TEXTAREA,
        max_length=10000,
        label="Logging and tracing coverage",
        help_text="What is logged and traced, and where it can be read.",
    )
    kill_switch = forms.CharField(
        widget=TEXTAREA,
        max_length=10000,
        label="Kill-switch readiness",
        help_text="How it is halted (the flag or toggle), and who may do it.",
    )
    notes = forms.CharField(widget=TEXTAREA, max_length=10000, required=False, label="Notes")

    prefix = "checklist"  # the change page holds other forms with "notes"


#: The largest evaluation-report file the change page accepts (the API's body limit is the server's).
MAX_REPORT_BYTES = 1_000_000


class EvidenceForm(forms.Form):
    """An evaluation report for a proposed version, from the change page: a JSON file in the
    evidence API's shape, or the metrics typed in. Both reach ``evidence_attach``."""

    version = forms.ChoiceField(label="Proposed version")
    report = forms.FileField(
        required=False,
        label="Report file (JSON)",
        help_text='The evidence API\'s body, e.g. {"metrics": {"accuracy": 0.93}, '
        '"safety": {"safety": 0.99}, "test_run_ids": ["ci-42"]}; its "version", if any, wins.',
    )
    metrics = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        required=False,
        label="Metrics",
        help_text="Or type them: one per line, name=number (e.g. accuracy=0.93).",
    )
    safety = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        required=False,
        label="Safety metrics",
        help_text="name=number per line (the offline evaluation reads safety, "
        "harmful_content_pass_rate or policy_conformance).",
    )
    bias = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        required=False,
        label="Bias metrics",
        help_text="name=value per line.",
    )
    test_run_ids = forms.CharField(
        max_length=5000,
        required=False,
        label="Test run ids",
        help_text="Comma-separated, e.g. ci-42.",
    )
    seed = forms.CharField(max_length=100, required=False, label="Seed")
    rng = forms.CharField(max_length=200, required=False, label="Random number generator")
    notes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), max_length=10000, required=False, label="Notes"
    )
    simulation = forms.BooleanField(
        required=False,
        label="A simulation run",
        help_text="The report validates downstream safety in a simulator (a breaking change of "
        "an action-eligible artifact needs one).",
    )

    #: Where the service's refusals of a typed report go (a file's go on ``report``).
    TYPED_FIELDS = ("version", "metrics", "safety", "bias", "test_run_ids", "seed", "rng", "notes")

    prefix = "evidence"  # the change page holds other forms with a "version" or "notes"

    def __init__(self, *args: Any, versions: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choices(self, "version").choices = versions
        self.body: dict[str, Any] = {}

    @property
    def from_file(self) -> bool:
        return bool(self.is_bound and self.files.get(self.add_prefix("report")))

    def clean_metrics(self) -> dict[str, Any]:
        return name_values(self.cleaned_data.get("metrics", ""), values="number")

    def clean_safety(self) -> dict[str, Any]:
        return name_values(self.cleaned_data.get("safety", ""), values="number")

    def clean_bias(self) -> dict[str, Any]:
        return name_values(self.cleaned_data.get("bias", ""), values="typed")

    def clean_test_run_ids(self) -> list[str]:
        return entries(self.cleaned_data.get("test_run_ids", ""))

    def _file_body(self, upload: Any) -> dict[str, Any] | None:
        """The uploaded report in the evidence API's shape (checked by the API's serializer)."""
        from reviews.api.serializers import EvidenceSerializer

        if upload.size > MAX_REPORT_BYTES:
            self.add_error("report", f"The file is over {MAX_REPORT_BYTES} bytes.")
            return None
        try:
            raw = json.loads(upload.read().decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            self.add_error("report", f"The file is not JSON: {exc}.")
            return None
        if not isinstance(raw, dict):
            self.add_error("report", "The file must hold a JSON object (the report).")
            return None
        raw.setdefault("version", self.cleaned_data.get("version", ""))
        shape = EvidenceSerializer(data=raw)
        if not shape.is_valid():
            for name, errors in shape.errors.items():
                text = "; ".join(str(e) for e in _flat(errors))
                self.add_error("report", f"In the file, '{name}': {text}")
            return None
        return dict(shape.validated_data)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload = data.get("report")
        typed = any(data.get(name) for name in ("metrics", "safety", "bias"))
        if upload and typed:
            self.add_error("report", "Upload a report file or type the metrics, not both.")
        elif upload:
            self.body = self._file_body(upload) or {}
        elif not self.errors and not data.get("metrics"):
            self.add_error("metrics", "Type at least one metric, or upload a report file.")
        elif not self.errors:
            self.body = {
                "version": data["version"],
                **{name: data[name] for name in self.TYPED_FIELDS if name != "version"},
            }
        if self.body and data.get("simulation"):
            self.body["simulation"] = True
        return data


def _flat(errors: Any) -> list[Any]:
    """DRF's nested error lists and objects, flattened for one line."""
    if isinstance(errors, dict):
        return [f"{key}: {e}" for key, value in errors.items() for e in _flat(value)]
    if isinstance(errors, list):
        return [e for item in errors for e in _flat(item)]
    return [errors]


class StageCriteriaForm(forms.Form):
    """A new version of a tenant's stage criteria: the document and the policy's settings."""

    criteria = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false"}),
        label="Criteria (JSON)",
        help_text='An object of class slug (or "*") to stages, each a list of criterion keys.',
    )
    enforced = forms.BooleanField(
        required=False,
        label="Enforced",
        help_text="Unticked: advisory (the checklist is shown, nothing is refused).",
    )
    reproducibility_tolerance = forms.FloatField(
        min_value=0,
        label="Reproducibility tolerance",
        help_text="Two runs with the same seed and RNG agree when every shared metric differs "
        "by at most this much.",
    )
    recertify_within_days = forms.IntegerField(
        min_value=1, max_value=365, label="Re-certify an emergency change within (days)"
    )
    reason = forms.CharField(max_length=500, label="Why change them")

    def clean_criteria(self) -> Any:
        try:
            return json.loads(self.cleaned_data["criteria"])
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"Not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
            ) from exc
