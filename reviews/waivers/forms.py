"""Forms of the waiver pages: they check the shape of input; ``reviews.waivers.services`` enforces the rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.conf import settings

from governance.kernel.forms import TEXTAREA, PasswordMixin, lines
from reviews.choices import CheckKind


class ExpiryField(forms.DateTimeField):
    """The expiry as a browser ``datetime-local`` input, read in the site's time zone."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label", "Expires at")
        kwargs.setdefault(
            "help_text",
            f"Date and time ({settings.TIME_ZONE}) after which the waived check blocks again.",
        )
        kwargs.setdefault("input_formats", ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"])
        super().__init__(**kwargs)


class _TermsForm(forms.Form):
    """What every waiver states: why, what is done meanwhile, where to read more, until when."""

    justification = forms.CharField(widget=TEXTAREA, max_length=5000, label="Justification")
    mitigation = forms.CharField(widget=TEXTAREA, max_length=5000, label="Mitigation plan")
    advisory_links = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        required=False,
        label="Advisory links",
        help_text="One http(s) URL per line.",
    )
    expires_at = ExpiryField()

    def links(self) -> list[str]:
        return lines(self.cleaned_data.get("advisory_links", ""))

    def expiry(self) -> datetime | None:
        value = self.cleaned_data.get("expires_at")
        return value if isinstance(value, datetime) else None


class WaiverForm(_TermsForm):
    """Granting a waiver: its scope (one change, or artifacts), the check, its owner and terms."""

    tenant = forms.ChoiceField(label="Tenant")
    check_kind = forms.ChoiceField(choices=CheckKind.choices, label="Check waived")
    metric = forms.CharField(
        max_length=100,
        required=False,
        label="Metric",
        help_text="Change gates only: the one metric waived (blank waives every gate).",
    )
    change = forms.CharField(
        max_length=40,
        required=False,
        label="Change request",
        help_text="Scope it to one change, e.g. CR-2026-0042 ...",
    )
    artifacts = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        required=False,
        label="Artifacts",
        help_text="... or to every change of these artifacts: one class/tenant/slug per line.",
    )
    owner = forms.CharField(
        max_length=150, label="Owner", help_text="Username of the person accountable for it."
    )

    field_order = ["tenant", "check_kind", "metric", "change", "artifacts", "owner"]

    def __init__(self, *args: Any, tenants: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tenant"].choices = [(t, t) for t in tenants]  # type: ignore[attr-defined]

    def artifact_paths(self) -> list[str]:
        return lines(self.cleaned_data.get("artifacts", ""))


class WaiverRenewForm(_TermsForm, PasswordMixin):
    """Renewing: a new waiver with the same scope; the terms may be restated. A deliberate
    act: the password too (unless confirmed lately)."""

    field_order = ["justification", "mitigation", "advisory_links", "expires_at", "password"]


class WaiverRevokeForm(PasswordMixin):
    """Revoking: why, and the password (a deliberate act)."""

    reason = forms.CharField(
        widget=TEXTAREA,
        max_length=2000,
        label="Why revoke",
        help_text="The changes it covered block again at once.",
    )

    field_order = ["reason", "password"]


class WaiverCountersignForm(PasswordMixin):
    """Countersigning: nothing but the password (the page shows what is waived)."""
