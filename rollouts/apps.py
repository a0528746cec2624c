"""App config for rollouts: runtime selection (applications, slots, pointers) and rollouts."""

from django.apps import AppConfig


class RolloutsConfig(AppConfig):
    name = "rollouts"

    def ready(self) -> None:
        # reviews asks "is this artifact bound to a slot?" without importing rollouts.
        from registry import hooks as registry_hooks
        from reviews import hooks
        from rollouts import canary, drift, selectors, services, telemetry_selectors
        from rollouts.manifest import signal_source_register

        hooks.register_slot_bound(selectors.slot_bound_artifacts)
        hooks.register_default_moved(services.default_moves_record)
        # registry asks "did this version serve lately?" before it removes a deprecated one.
        registry_hooks.register_recent_traffic(telemetry_selectors.recent_traffic_by_version)
        # ... and "who used it lately?" for the version and deprecation pages (24 h and 7 d).
        registry_hooks.register_usage(telemetry_selectors.usage_by_version, selectors.usage_url)
        # ... and "which slots serve these artifacts?" for the registry list's slot column.
        registry_hooks.register_slots(selectors.slot_summaries)
        # ... and "does anything run other content than approved?" (the artifact page's drift).
        registry_hooks.register_artifact_panels(drift.artifact_panels)
        # The Active stage's criteria rollouts can answer (issue 17) replace reviews' placeholders.
        from rollouts.criteria import criteria_register

        criteria_register()
        # The canary analysis (issue 12) is the controller's telemetry signal.
        signal_source_register(canary.canary_signal)
