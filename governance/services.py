"""The sweep (waivers are ``reviews.waivers.services``; notifications and heartbeats are in the
kernel: ``governance.kernel.notifications``, importable from here too)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from governance.kernel.notifications import (  # noqa: F401 - importable from here too
    heartbeat_record,
    notification_email_send,
    notification_mark_read,
    notification_outbox_requeue,
    notification_send,
)
from reviews.waivers.services import waiver_alerts_send

# --- the sweep: what Celery beat keeps on time -----------------------------------------------


def governance_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Everything time-driven, at one moment: waiver alerts, due removals (held while the
    version still serves), overdue post-mortems, rollout flags about to expire, and the
    telemetry rollup (raw rows past TELEMETRY_RAW_RETENTION_HOURS folded into hours).

    Idempotent: running it twice, late, or after a worker died halfway sends nothing twice
    and removes nothing twice.
    """
    from registry.services import StillServing, deprecations_remove_due
    from reviews.services import postmortem_reminders_send
    from rollouts.controller import flag_alerts_send
    from rollouts.telemetry_services import telemetry_fold_due

    now = now or timezone.now()
    held: list[StillServing] = []
    return {
        "waiver_alerts": waiver_alerts_send(now=now),
        "removed_versions": len(deprecations_remove_due(now=now, held=held)),
        "removals_held": len(held),
        "postmortem_reminders": postmortem_reminders_send(now=now),
        "rollout_flag_alerts": flag_alerts_send(now=now),
        "telemetry_rows_folded": telemetry_fold_due(now=now),
    }
