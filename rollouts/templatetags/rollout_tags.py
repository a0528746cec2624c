"""Template filters of the rollout pages."""

from __future__ import annotations

from django import template

from rollouts.choices import ACTIVE_STATES
from rollouts.forms import percent as _percent
from rollouts.models import Rollout

register = template.Library()


@register.filter
def percent(weight: int | None) -> str:
    """A canary weight in buckets as a percentage: ``{{ rollout.weight|percent }}`` -> ``25%``."""
    return _percent(int(weight or 0))


@register.filter
def active(rollout: Rollout) -> bool:
    """True while the rollout's rules take part in resolution (progressing or paused)."""
    return rollout.state in ACTIVE_STATES
