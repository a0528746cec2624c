"""The kernel's periodic and queued tasks (heartbeat, checkpoints, verification, email).

Thin: each calls one service. Their names keep the ``governance.tasks.`` prefix the beat
schedule and queued messages already use."""

from __future__ import annotations

import socket

from celery import shared_task
from django.conf import settings

from governance.kernel.events.context import channel
from governance.kernel.events.models import VerificationRun
from governance.kernel.events.services import checkpoint_create, verification_execute
from governance.kernel.notifications import (
    heartbeat_record,
    notification_email_send,
    notification_outbox_requeue,
)


@shared_task(name="governance.tasks.heartbeat", ignore_result=True)
def heartbeat() -> str:
    """Run by beat every HEARTBEAT_INTERVAL_SECONDS: proves a worker and beat are alive."""
    hostname = getattr(heartbeat.request, "hostname", None) or socket.gethostname()
    beat = heartbeat_record(worker=hostname)
    return beat.last_beat_at.isoformat()


@shared_task(name="governance.tasks.checkpoint", ignore_result=True)
def checkpoint() -> int | None:
    """Run by beat every CHECKPOINT_INTERVAL_SECONDS: sign the tree head if the log grew."""
    with channel("task:checkpoint"):
        made = checkpoint_create()
    return made.tree_size if made else None


@shared_task(
    name="governance.tasks.verify_log",
    ignore_result=True,
    acks_late=True,
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
    max_retries=3,
)
def verify_log(run_id: str) -> str | None:
    """Verify the whole log for a queued VerificationRun, reporting progress on the run."""
    run = VerificationRun.objects.filter(pk=run_id).first()
    if run is None:
        return None
    return verification_execute(run=run, progress_every=settings.VERIFY_PROGRESS_EVERY).status


@shared_task(
    name="governance.tasks.notification_email",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    # Any failure of the mail backend (SMTP errors are OSErrors): nothing was stamped, so
    # trying again cannot send twice. After the last retry the outbox queues it again.
    autoretry_for=(Exception,),
    retry_backoff=True,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=6,
)
def notification_email(notification_id: int) -> bool:
    """Email one notification (queued after the commit that created it, and by the outbox)."""
    return notification_email_send(notification_id=notification_id)


@shared_task(name="governance.tasks.email_outbox", ignore_result=True)
def email_outbox() -> int:
    """Run by beat every NOTIFICATION_OUTBOX_INTERVAL_SECONDS: queue emails never stamped sent."""
    return notification_outbox_requeue()
