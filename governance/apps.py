"""App config for cross-cutting governance: health, the event log, later waivers and rollouts."""

from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"

    def ready(self) -> None:
        # Bind shared tasks to our Celery app in every process that runs Django.
        from governance import celery  # noqa: F401
