"""``{{ value|label:"role" }}``: the words people read for a stored choice value (its
``TextChoices`` label), so pages never show ``privacy_officer``. Keep ``data-*`` attributes
on the machine value. It sits at the roof because it names every floor's choices."""

from __future__ import annotations

from django import template
from django.db.models import TextChoices

from accounts.choices import Role
from registry.choices import Stage
from reviews.choices import ChangeStatus, CheckKind, CheckStatus, Decision, Requirement
from reviews.waivers.choices import WaiverState
from rollouts.choices import RolloutState, RolloutStrategy

register = template.Library()

#: The name a template gives -> the choices it reads the label from.
CHOICES: dict[str, type[TextChoices]] = {
    "role": Role,
    "requirement": Requirement,
    "change_status": ChangeStatus,
    "check_kind": CheckKind,
    "check_status": CheckStatus,
    "decision": Decision,
    "stage": Stage,
    "waiver_state": WaiverState,
    "rollout_state": RolloutState,
    "rollout_strategy": RolloutStrategy,
}


def choice_label(value: object, kind: str) -> str:
    """The label of ``value`` among the ``kind`` choices; the value itself if it is not one."""
    choices = CHOICES[kind]  # a wrong name is a template bug: fail loudly
    text = str(value)
    return str(choices(text).label) if text in choices.values else text


@register.filter(name="label")
def label(value: object, kind: str) -> str:
    return choice_label(value, kind)
