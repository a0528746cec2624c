"""App config of the project level (the roof): it owns the label of the kernel's tables and the waivers'."""

from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"

    def ready(self) -> None:
        # Bind shared tasks to our Celery app in every process that runs Django.
        from governance import celery  # noqa: F401
        from governance.kernel.events import deferral, services
        from governance.recovery import rehearsals
        from rollouts import hooks as rollouts_hooks

        # Events wait for the end of the outermost transaction: the log's lock is taken last.
        deferral.install(services.append_drafts)
        # `rollouts rehearse SLOT` runs the rehearsal the roof owns (rollouts cannot import it).
        rollouts_hooks.register_rehearsal_runner(rehearsals.rehearsal_cli)
