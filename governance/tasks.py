"""Periodic tasks of the governance app. Thin: each calls one service."""

from __future__ import annotations

import socket

from celery import shared_task

from governance.services import heartbeat_record


@shared_task(name="governance.tasks.heartbeat", ignore_result=True)
def heartbeat() -> str:
    """Run by beat every HEARTBEAT_INTERVAL_SECONDS: proves a worker and beat are alive."""
    hostname = getattr(heartbeat.request, "hostname", None) or socket.gethostname()
    beat = heartbeat_record(worker=hostname)
    return beat.last_beat_at.isoformat()
