"""App config for reviews."""

from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "reviews"

    def ready(self) -> None:
        # registry offers rollback and the safety switch without importing reviews.
        from accounts import hooks as accounts_hooks
        from registry import hooks as registry_hooks
        from reviews import provenance, registry_actions
        from reviews.lifecycle.checklist import checklist
        from reviews.services.notifications import role_revoked_resolve

        registry_hooks.register_artifact_panels(registry_actions.artifact_panels)
        # The version page's "Not re-certified (due …)" after an emergency change.
        registry_hooks.register_version_notices(registry_actions.version_notices)
        registry_hooks.register_activation(
            rollback=registry_actions.rollback, deactivate=registry_actions.deactivate
        )
        # The version page's stage checklist (issue 17).
        registry_hooks.register_checklist(checklist)
        # A revoked role resolves the person's review requests it no longer lets them fill.
        accounts_hooks.register_role_revoked(role_revoked_resolve)
        # The version page's approvers and export-status's evidence references.
        registry_hooks.register_provenance(provenance.version_provenance)
        registry_hooks.register_evidence(provenance.evidence_refs)
