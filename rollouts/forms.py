"""Forms of the rollout pages: they check the shape of input; ``rollouts.services`` enforces the rules."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.conf import settings

from governance.kernel.forms import TEXTAREA, PasswordMixin, entries, lines
from rollouts.choices import BUCKETS, CANARY_DEFAULT_STEPS, PromotionTarget, RolloutStrategy

#: A weight of BUCKETS is 100%: one percent is this many buckets.
BUCKETS_PER_PERCENT = BUCKETS // 100


def percent(weight: int) -> str:
    """A weight in buckets as people read it: 1000 -> "1%", 500 -> "0.5%"."""
    return f"{(Decimal(weight) / BUCKETS_PER_PERCENT).normalize():f}%"


def default_steps_text(strategy: str) -> str:
    if strategy == RolloutStrategy.CANARY:
        return ", ".join(percent(w).rstrip("%") for w in CANARY_DEFAULT_STEPS)
    return ""


class RolloutActionForm(PasswordMixin):
    """Start, advance, pause, resume, abort or roll back: the revision seen, why, and the password."""

    revision = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        required=False,
        label="Why",
        help_text="Recorded with the transition.",
    )

    field_order = ["revision", "reason", "password"]

    def __init__(self, *args: Any, reason_required: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reason"].required = reason_required


class RolloutForm(forms.Form):
    """Starting a rollout from a promoted change: strategy, steps, target, cohort, flag."""

    change = forms.CharField(
        max_length=40, label="Change request", help_text="A promoted change, e.g. CR-2026-0042."
    )
    strategy = forms.ChoiceField(
        choices=RolloutStrategy.choices, label="Strategy", help_text="The change names one."
    )
    steps = forms.CharField(
        max_length=2000,
        required=False,
        label="Steps",
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        help_text="Canary: percentages, comma-separated (blank: 1, 5, 25, 50, 100). "
        "Tenant: one wave per line, tenant slugs comma-separated.",
    )
    target = forms.ChoiceField(
        choices=PromotionTarget.choices, initial=PromotionTarget.LIVE, label="Target"
    )
    cohort = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        required=False,
        label="Cohort",
        help_text="Paper target: the subject ids that get the candidate, one per line.",
    )
    flag_key = forms.CharField(
        max_length=100, required=False, label="Flag key", help_text="Feature-flagged only."
    )
    flag_expires_at = forms.DateTimeField(
        required=False,
        label="Flag expires at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"],
        help_text=f"Feature-flagged only: flags are temporary (at most "
        f"{settings.ROLLOUT_FLAG_MAX_DAYS} days; {settings.TIME_ZONE}).",
    )
    reason = forms.CharField(widget=TEXTAREA, max_length=2000, required=False, label="Why")

    def clean_change(self) -> str:
        return str(self.cleaned_data["change"]).strip().upper()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        strategy = data.get("strategy")
        text = data.get("steps", "") or ""
        if strategy == RolloutStrategy.CANARY:
            data["steps_value"] = self._canary_steps(text)
        elif strategy == RolloutStrategy.TENANT:
            waves = [entries(line) for line in lines(text)]
            data["steps_value"] = waves or None
        else:
            data["steps_value"] = None
        data["cohort_value"] = lines(data.get("cohort", "")) or None
        return data

    def _canary_steps(self, text: str) -> list[int] | None:
        parts = [p.rstrip("%") for p in entries(text)]
        if not parts:
            return None
        weights = []
        for part in parts:
            try:
                value = Decimal(part)
            except InvalidOperation:
                self.add_error("steps", f"{part} is not a percentage.")
                return None
            if not 0 < value <= 100:
                self.add_error("steps", f"{part}% is not between 0 and 100.")
                return None
            buckets = value * BUCKETS_PER_PERCENT
            if buckets != buckets.to_integral_value():
                self.add_error("steps", f"{part}%: at most three decimals.")
                return None
            weights.append(int(buckets))
        return weights


class ApplicationForm(forms.Form):
    tenant = forms.ChoiceField(label="Tenant", help_text="The owner; the platform's are shared.")
    slug = forms.CharField(max_length=100, label="Slug", help_text="e.g. sales-agent")
    name = forms.CharField(max_length=200, label="Name")
    description = forms.CharField(widget=TEXTAREA, required=False, label="Description")

    def __init__(self, *args: Any, tenants: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tenant"].choices = [(t, t) for t in tenants]  # type: ignore[attr-defined]


class ApplicationEditForm(forms.Form):
    name = forms.CharField(max_length=200, label="Name")
    description = forms.CharField(widget=TEXTAREA, required=False, label="Description")


class SlotForm(forms.Form):
    name = forms.CharField(max_length=100, label="Slot name", help_text="e.g. qualifyLead")
    artifact = forms.CharField(
        max_length=300,
        label="Artifact",
        help_text="class/tenant/slug of an artifact with an active version (its default).",
    )
    description = forms.CharField(
        widget=TEXTAREA, required=False, label="Description", help_text="What it is for."
    )


class SlotDescriptionForm(forms.Form):
    description = forms.CharField(
        widget=TEXTAREA,
        required=False,
        label="Description",
        help_text="What the slot is for and why its default.",
    )


class OverrideForm(forms.Form):
    """Set (a version) or clear (blank version) a tenant's override of a slot, with a reason."""

    tenant = forms.ChoiceField(label="Tenant")
    version = forms.CharField(
        max_length=64,
        required=False,
        label="Version",
        help_text="A promoted version of the slot's artifact; blank clears the override.",
    )
    reason = forms.CharField(widget=TEXTAREA, max_length=2000, label="Why")

    def __init__(self, *args: Any, tenants: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tenant"].choices = [(t, t) for t in tenants]  # type: ignore[attr-defined]
