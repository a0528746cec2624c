"""Event log pages: feed with filters and keyset pages, event page with its verification, metrics."""

from __future__ import annotations

import re

import pytest

from accounts import services as accounts
from governance.kernel.events.models import Event, VerificationRun
from governance.views import FEED_PAGE_SIZE

pytestmark = pytest.mark.django_db


def rows_in(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<td><a href="/governance/events/(\d+)/">', html)]


@pytest.mark.usefixtures("acme")
def test_feed_shows_visible_events_with_links(client, globex, make_user):
    accounts.role_grant(user=make_user("g"), role="reviewer", tenant=globex, actor=None)
    reviewer = make_user("rev", acme="reviewer")
    client.force_login(reviewer)
    html = client.get("/governance/events/").content.decode()
    shown = rows_in(html)
    visible = set(Event.objects.filter(tenant__slug="acme").values_list("seq", flat=True)) | set(
        Event.objects.filter(tenant__isnull=True, actor=reviewer).values_list("seq", flat=True)
    )
    assert set(shown) == visible
    assert shown == sorted(shown, reverse=True)
    assert 'href="/tenants/acme/"' in html  # subject link


def test_feed_keyset_pages_and_filters(client, root, acme, make_user):
    for i in range(FEED_PAGE_SIZE):
        accounts.role_grant(user=make_user(f"u{i}"), role="reviewer", tenant=acme, actor=None)
    client.force_login(root)
    total = Event.objects.count()
    first = client.get("/governance/events/").content.decode()
    assert rows_in(first) == list(range(total, total - FEED_PAGE_SIZE, -1))
    next_link = re.search(r'<a href="\?([^"]+)" rel="next">', first)
    assert next_link is not None
    second = client.get(
        "/governance/events/?" + next_link.group(1).replace("&amp;", "&")
    ).content.decode()
    assert rows_in(second) == list(
        range(total - FEED_PAGE_SIZE, max(total - 2 * FEED_PAGE_SIZE, 0), -1)
    )
    only = client.get("/governance/events/?kind=role.granted&actor=").content.decode()
    assert set(rows_in(only)) <= set(
        Event.objects.filter(kind="role.granted").values_list("seq", flat=True)
    )
    bad = client.get("/governance/events/?since=not-a-date")
    assert bad.status_code == 400
    assert "Enter a valid date/time." in bad.content.decode()


def test_feed_query_count_does_not_grow(
    client, root, acme, make_user, django_assert_max_num_queries
):
    client.force_login(root)
    accounts.role_grant(user=make_user("a"), role="reviewer", tenant=acme, actor=None)
    with django_assert_max_num_queries(20) as few:
        client.get("/governance/events/")
    for i in range(30):
        accounts.role_grant(user=make_user(f"m{i}"), role="reviewer", tenant=acme, actor=None)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(rows_in(client.get("/governance/events/").content.decode())) == FEED_PAGE_SIZE


def test_event_page_shows_entry_hash_signature_and_verification(client, root, acme, make_user):
    accounts.role_grant(user=make_user("a"), role="reviewer", tenant=acme, actor=None)
    event = Event.objects.order_by("-seq").first()
    client.force_login(root)
    html = client.get(f"/governance/events/{event.seq}/").content.decode()
    assert event.entry_hash in html
    assert event.signature in html
    assert event.key_id in html
    assert re.search(r'id="verification-status">verified<', html)
    assert "&quot;payload_sha256&quot;" in html  # the signed bytes are shown


def test_event_page_shows_a_tampered_entry_as_failed(client, root, acme, make_user):
    from tests.governance.test_verify import tamper

    accounts.role_grant(user=make_user("a"), role="reviewer", tenant=acme, actor=None)
    event = Event.objects.order_by("-seq").first()
    tamper("UPDATE governance_event SET actor_name = %s WHERE seq = %s", ["mallory", event.seq])
    client.force_login(root)
    html = client.get(f"/governance/events/{event.seq}/").content.decode()
    assert re.search(r'id="verification-status">FAILED<', html)
    assert "actor columns differ from the signed entry" in html


@pytest.mark.usefixtures("acme")
def test_event_page_of_another_tenant_is_404(client, globex, make_user):
    accounts.role_grant(user=make_user("g"), role="reviewer", tenant=globex, actor=None)
    client.force_login(make_user("rev", acme="reviewer"))
    seq = Event.objects.filter(tenant__slug="globex").values_list("seq", flat=True).first()
    assert client.get(f"/governance/events/{seq}/").status_code == 404


@pytest.mark.usefixtures("acme")
def test_verify_button_runs_and_shows_progress(
    client, make_user, django_capture_on_commit_callbacks
):
    from governance.celery import app

    boss = make_user("boss", acme="administrator")
    client.force_login(boss)
    assert "Verify the log" in client.get("/governance/").content.decode()
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            resp = client.post("/governance/verify/")
    finally:
        app.conf.task_always_eager = False
    run = VerificationRun.objects.get()
    assert resp["Location"] == run.get_absolute_url()
    page = client.get(resp["Location"]).content.decode()
    assert '<span id="run-status" data-status="passed">Passed</span>' in page
    assert f"OK: {Event.objects.count()} events verified" in page
    assert "hx-trigger" not in page  # finished: no more polling


@pytest.mark.usefixtures("acme")
def test_queued_run_page_refreshes_itself(client, make_user):
    boss = make_user("boss", acme="administrator")
    client.force_login(boss)
    run = VerificationRun.objects.create(total=10, requested_by=boss)
    page = client.get(run.get_absolute_url()).content.decode()
    # htmx polls the page and swaps its live part; no <meta refresh> (it moves focus to the top).
    assert f'hx-get="{run.get_absolute_url()}" hx-trigger="every 2s"' in page
    assert 'hx-select="#run-live"' in page
    assert 'http-equiv="refresh"' not in page
    assert "Waiting for a worker" in page


@pytest.mark.usefixtures("acme")
def test_reviewer_cannot_start_verification(client, make_user):
    client.force_login(make_user("rev", acme="reviewer"))
    assert "Verify the log" not in client.get("/governance/").content.decode()
    resp = client.post("/governance/verify/", follow=True)
    assert "Only administrators can start a verification." in resp.content.decode()
    assert not VerificationRun.objects.exists()


def test_metrics_page_and_prometheus_endpoint(
    client, root, acme, make_user, token_client, settings
):
    accounts.role_grant(user=make_user("a"), role="reviewer", tenant=acme, actor=None)
    client.force_login(root)
    html = client.get("/governance/metrics/").content.decode()
    assert "<td>acme</td>" in html
    assert "role.granted" in html
    text = token_client(root).get("/metrics").content.decode()
    assert f"governance_events_total {float(Event.objects.count())}" in text
    assert 'governance_tenant_activity{tenant="acme"}' in text
    assert 'governance_events_recent{kind="role.granted"}' in text
    assert 'governance_waivers{state="active"} 0.0' in text
    assert "governance_postmortems_overdue 0.0" in text
    assert "governance_deprecated_versions 0.0" in text
    assert token_client(make_user("rev", acme="reviewer")).get("/metrics").status_code == 403
    client.force_login(make_user("rev2", acme="reviewer"))
    assert client.get("/governance/metrics/").status_code == 404
    settings.METRICS_PUBLIC = True
    assert client.get("/metrics").status_code == 200
