"""App config for reviews."""

from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "reviews"

    def ready(self) -> None:
        # registry offers rollback and the safety switch without importing reviews.
        from registry import hooks as registry_hooks
        from reviews import registry_actions

        registry_hooks.register_artifact_panels(registry_actions.artifact_panels)
        registry_hooks.register_activation(
            rollback=registry_actions.rollback, deactivate=registry_actions.deactivate
        )
