"""App config for cross-cutting governance: health, and later the event log, waivers, rollouts."""

from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"
