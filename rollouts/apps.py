"""App config for rollouts: runtime selection (applications, slots, pointers) and rollouts."""

from django.apps import AppConfig


class RolloutsConfig(AppConfig):
    name = "rollouts"

    def ready(self) -> None:
        # reviews asks "is this artifact bound to a slot?" without importing rollouts.
        from reviews import hooks
        from rollouts import selectors, services

        hooks.register_slot_bound(selectors.slot_bound_artifacts)
        hooks.register_default_moved(services.default_moves_record)
