"""/healthz, /readyz and the heartbeat task."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from governance import tasks
from governance.kernel.notifications import heartbeat_record
from governance.models import WorkerHeartbeat

pytestmark = pytest.mark.django_db


def test_healthz_reports_the_process(client):
    resp = client.get("/healthz")
    body = resp.json()
    assert resp.status_code == 200
    assert body["status"] == "ok"
    assert isinstance(body["pid"], int)
    assert body["uptime_seconds"] >= 0
    assert resp["Cache-Control"].startswith("max-age=0")


def test_readyz_without_heartbeat_is_503(client):
    resp = client.get("/readyz")
    body = resp.json()
    assert resp.status_code == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True
    assert body["checks"]["heartbeat"] == {
        "ok": False,
        "detail": "no heartbeat yet: is the worker and beat running?",
    }


def test_readyz_ok_after_heartbeat_and_stale_later(client, settings):
    tasks.heartbeat.apply()  # runs the task body in-process, as a worker would
    beat = WorkerHeartbeat.objects.get()
    assert beat.beats == 1
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.json()["status"] == "ok"
    assert resp.json()["checks"]["heartbeat"]["detail"].startswith(beat.worker)
    WorkerHeartbeat.objects.update(
        last_beat_at=timezone.now() - timedelta(seconds=settings.HEARTBEAT_STALE_AFTER_SECONDS + 5)
    )
    stale = client.get("/readyz")
    assert stale.status_code == 503
    assert stale.json()["checks"]["heartbeat"]["detail"].startswith("stale")


@pytest.mark.usefixtures("settings")
def test_readyz_reports_broken_broker(client):
    from governance.celery import app

    heartbeat_record(worker="w1")
    old = app.conf.broker_url
    app.conf.update(broker_url="redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        resp = client.get("/readyz")
    finally:
        app.conf.update(broker_url=old)
    assert resp.status_code == 503
    assert resp.json()["checks"]["broker"]["ok"] is False
    assert resp.json()["checks"]["database"]["ok"] is True


def test_heartbeat_counts_per_worker():
    heartbeat_record(worker="a")
    heartbeat_record(worker="a")
    heartbeat_record(worker="b")
    assert dict(WorkerHeartbeat.objects.values_list("worker", "beats")) == {"a": 2, "b": 1}


def test_governance_page_shows_checks(client, make_user):
    client.force_login(make_user("alice"))
    html = client.get("/governance/").content.decode()
    assert "<td>database</td>" in html
    assert "<td>heartbeat</td>" in html
