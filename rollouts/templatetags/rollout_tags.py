"""Template filters of the rollout pages."""

from __future__ import annotations

from django import template

from rollouts.forms import percent as _percent

register = template.Library()


@register.filter
def percent(weight: int | None) -> str:
    """A canary weight in buckets as a percentage: ``{{ rollout.weight|percent }}`` -> ``25%``."""
    return _percent(int(weight or 0))
