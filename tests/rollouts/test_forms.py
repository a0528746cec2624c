"""``rollouts.forms.RolloutForm``: how the typed steps become canary weights or tenant waves."""

from __future__ import annotations

from typing import Any

from rollouts.choices import PromotionTarget, RolloutStrategy
from rollouts.forms import BUCKETS_PER_PERCENT, RolloutForm


def _form(strategy: str, steps: str, **extra: Any) -> RolloutForm:
    data = {
        "change": " cr-2026-0001 ",
        "strategy": strategy,
        "target": PromotionTarget.LIVE,
        "steps": steps,
        **extra,
    }
    return RolloutForm(data=data)


def test_canary_steps_split_on_commas_and_lines_and_drop_the_percent_sign():
    form = _form(RolloutStrategy.CANARY, "1%, 5\n25 ,\r\n\n 50%,100")
    assert form.is_valid(), form.errors
    assert form.cleaned_data["change"] == "CR-2026-0001"
    assert form.cleaned_data["steps_value"] == [
        p * BUCKETS_PER_PERCENT for p in (1, 5, 25, 50, 100)
    ]


def test_canary_steps_blank_means_the_default():
    form = _form(RolloutStrategy.CANARY, " \n ")
    assert form.is_valid(), form.errors
    assert form.cleaned_data["steps_value"] is None


def test_canary_step_that_is_not_a_number_is_refused_on_steps():
    form = _form(RolloutStrategy.CANARY, "1, five")
    assert not form.is_valid()
    assert form.errors["steps"] == ["five is not a percentage."]


def test_tenant_waves_are_one_line_each_with_comma_separated_tenants():
    form = _form(RolloutStrategy.TENANT, " acme, globex \n\n initech,\n", cohort="a\n\nb ")
    assert form.is_valid(), form.errors
    assert form.cleaned_data["steps_value"] == [["acme", "globex"], ["initech"]]
    assert form.cleaned_data["cohort_value"] == ["a", "b"]
