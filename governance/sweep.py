"""The sweep: everything time-driven, composed from every app's periodic services at one moment
(Celery beat runs it as ``governance.tasks.sweep``; ``manage.py governance sweep`` by hand)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from reviews.waivers.services import waiver_alerts_send


def governance_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Everything time-driven, at one moment: waiver alerts, due removals (held while the
    version still serves), overdue post-mortems and re-certifications, rollout flags about to expire, and the
    telemetry rollup (raw rows past TELEMETRY_RAW_RETENTION_HOURS folded into hours), and
    recovery proof grown stale (backups, drills, rehearsals: alerted once per episode).

    Idempotent: running it twice, late, or after a worker died halfway sends nothing twice
    and removes nothing twice.
    """
    from governance.recovery.alerts import recovery_alerts_send
    from registry.services import StillServing, deprecations_remove_due
    from reviews.services import postmortem_reminders_send, recertification_reminders_send
    from rollouts.controller import flag_alerts_send
    from rollouts.telemetry_services import telemetry_fold_due

    now = now or timezone.now()
    held: list[StillServing] = []
    return {
        "waiver_alerts": waiver_alerts_send(now=now),
        "removed_versions": len(deprecations_remove_due(now=now, held=held)),
        "removals_held": len(held),
        "postmortem_reminders": postmortem_reminders_send(now=now),
        "recertification_reminders": recertification_reminders_send(now=now),
        "rollout_flag_alerts": flag_alerts_send(now=now),
        "telemetry_rows_folded": telemetry_fold_due(now=now),
        "recovery_alerts": recovery_alerts_send(now=now),
    }
