"""The readiness dashboard: who sees it, what it shows, and a query count fixed whatever the rows."""

from __future__ import annotations

import re
from datetime import timedelta
from itertools import count
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts import services as accounts
from governance.kernel.events.services import checkpoint_create
from registry.models import Deprecation, VersionUsage
from reviews.choices import ChangeStatus, CheckKind, Decision
from reviews.models import Approval
from reviews.waivers import services
from reviews.waivers.models import Waiver
from tests.charts import bars, chart_svg, y_labels
from tests.factories import change_row
from tests.pages import page_queries
from tests.reviews.conftest import make_artifact, people, prompt, publish

__all__ = ["people", "prompt"]  # fixtures used here

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
_numbers = count(9000)


def section(html: str, name: str) -> str:
    """The HTML of one ``<section id=name>``."""
    match = re.search(rf'<section[^>]*id="{name}">(.*?)</section>', html, re.S)
    assert match is not None, name
    return match.group(1)


def open_slots(html: str) -> dict[str, int]:
    return {
        r: int(n)
        for r, n in re.findall(
            r'<tr data-requirement="(\w+)"><th scope="row">[^<]+</th><td>(\d+)</td>', html
        )
    }


def test_only_administrators_and_officers_see_it(
    client: Client, people: dict[str, Any], root: Any, make_user: Any, globex: Any
) -> None:
    for who in ("reviewer", "author"):
        client.force_login(people[who])
        response = client.get("/governance/readiness/")
        assert response.status_code == 403, who
        assert "Readiness</a>" not in client.get("/governance/").content.decode()
    client.force_login(make_user("globex-admin", globex=["member", "administrator"]))
    assert client.get("/governance/readiness/").status_code == 200
    for who in ("admin", "privacy", "security"):
        client.force_login(people[who])
        assert client.get("/governance/readiness/").status_code == 200, who
        assert 'href="/governance/readiness/"' in client.get("/governance/").content.decode()
    client.force_login(root)
    html = client.get("/governance/readiness/").content.decode()
    assert "acme, globex" in html
    client.logout()
    assert client.get("/governance/readiness/").status_code == 302


def test_it_shows_what_needs_attention(
    client: Client, acme: Any, globex: Any, people: dict[str, Any], prompt: Any, make_user: Any
) -> None:
    now = timezone.now()
    author, admin = people["author"], people["admin"]
    # Approvals: two changes in review need a reviewer and an administrator; one has its
    # reviewer; a draft needs nobody yet.
    first = change_row(acme, author)
    change_row(acme, author)
    change_row(acme, author, status=ChangeStatus.DRAFT)
    change_row(acme, author, requirements=["reviewer", "security_officer"])
    Approval.objects.create(
        change=first,
        approver=people["reviewer"],
        requirement="reviewer",
        decision=Decision.APPROVE,
        revision=first.revision,
        binding_sha256=first.binding_sha256,
    )
    # Waivers: one expiring in 3 days, one active.
    soon = services.waiver_grant(
        tenant=acme,
        actor=admin,
        check_kind=CheckKind.OFFLINE_EVALUATION,
        owner=people["reviewer"],
        justification="j",
        mitigation="m",
        expires_at=now + 3 * DAY,
        artifacts=[prompt],
    )
    services.waiver_grant(
        tenant=acme,
        actor=admin,
        check_kind=CheckKind.OFFLINE_EVALUATION,
        owner=people["reviewer"],
        justification="j",
        mitigation="m",
        expires_at=now + 30 * DAY,
        artifacts=[prompt],
    )
    # A deprecated version with its replacement, and one with usage reported.
    v1 = publish(prompt, impact="major", text="One {{ customer }}.")
    v2 = publish(prompt, text="Two {{ customer }}.")
    v3 = publish(prompt, text="Three {{ customer }}.")
    Deprecation.objects.create(
        version=v1, replacement=v3, reason="old", remove_after=now + 14 * DAY
    )
    Deprecation.objects.create(
        version=v2, replacement=v3, reason="old", remove_after=now + 20 * DAY
    )
    VersionUsage.objects.create(version=v2, consumer="crm-bot", requests=41)
    # Emergency changes: one post-mortem overdue, one done, one not yet due.
    overdue = change_row(
        acme,
        author,
        status=ChangeStatus.PROMOTED,
        emergency=True,
        created_at=now - 41 * DAY,
        promoted_at=now - 40 * DAY,
        postmortem_due_at=now - 3 * DAY,
    )
    done = change_row(
        acme,
        author,
        status=ChangeStatus.PROMOTED,
        emergency=True,
        created_at=now - 41 * DAY,
        promoted_at=now - 40 * DAY,
        postmortem_due_at=now - 3 * DAY,
        postmortem_done_at=now - 4 * DAY,
    )
    # Lead times of 1..10 hours: median 5.5 h, p90 (nearest rank) 9 h.
    for hours in range(1, 11):
        change_row(
            acme,
            author,
            status=ChangeStatus.PROMOTED,
            created_at=now - 2 * DAY,
            promoted_at=now - 2 * DAY + hours * HOUR,
        )
    change_row(  # promoted too long ago to count
        acme,
        author,
        status=ChangeStatus.PROMOTED,
        created_at=now - 90 * DAY,
        promoted_at=now - 40 * DAY,
    )
    # Ownership: one artifact without an owner, one whose owner left.
    make_artifact(acme, "prompt", "orphan")
    leaver = make_user("leaver", acme="member")
    make_artifact(acme, "prompt", "left-behind", owner=leaver)
    accounts.membership_remove(user=leaver, tenant=acme, actor=None)
    # Another tenant's rows never show.
    g_author = make_user("g-author", globex="member")
    change_row(globex, g_author, emergency=True)
    make_artifact(globex, "prompt", "globex-orphan")
    checkpoint_create(force=True)

    client.force_login(people["security"])
    response = client.get("/governance/readiness/")
    assert response.status_code == 200
    html = response.content.decode()

    assert open_slots(section(html, "approvals")) == {
        "reviewer": 2,
        "administrator": 2,
        "privacy_officer": 0,
        "security_officer": 1,
        "owner": 0,
        "deputy": 0,
    }
    waivers = section(html, "waivers")
    assert re.search(r'data-state="expiring_soon">.*?<td>1</td>', waivers)
    assert re.search(r'data-state="active">.*?<td>1</td>', waivers)
    expiring = waivers.split('id="expiring"')[1]
    assert soon.reference in expiring
    assert Waiver.objects.count() == 2
    assert expiring.count("<tr><td>") == 1

    deprecations = section(html, "deprecations")
    assert v1.path in deprecations
    assert v3.path in deprecations
    assert (now + 14 * DAY).strftime("%Y-%m-%d") in deprecations
    assert "no usage reported yet" in deprecations
    assert "1 consumer, 41 requests" in deprecations

    postmortems = section(html, "postmortems")
    assert overdue.reference in postmortems
    assert done.reference not in postmortems

    emergencies = section(html, "emergencies")
    acme_row = re.search(r'<tr data-tenant="acme">(.*?)</tr>', emergencies, re.S)
    assert acme_row is not None
    cells = re.findall(r"<td>(\d+)</td>", acme_row.group(1))
    opened = timezone.localtime(now - 41 * DAY)
    months_back = (now.year - opened.year) * 12 + now.month - opened.month
    assert len(cells) == 12
    assert cells[11 - months_back] == "2"
    assert sum(int(c) for c in cells) == 2
    assert 'data-tenant="globex"' not in emergencies

    ownerless = section(html, "ownerless")
    assert "prompt/acme/orphan" in ownerless
    assert "leaver (no longer a member)" in ownerless
    assert "globex-orphan" not in ownerless

    log = section(html, "log")
    assert "Last verification:" in log
    assert "never" in log
    assert "size " in log
    assert "signed by" in log

    lead = section(html, "lead-time")
    assert 'id="lead-median">5.5 h<' in lead
    assert 'id="lead-p90">9.0 h<' in lead
    assert "10 changes promoted" in lead
    assert len(bars(chart_svg(lead, "lead-chart"))) == 10
    # The charts need no script: the page body has none, and the only script in the
    # head is the site's own error-summary helper, served by the app.
    assert "<script" not in html.split("<main", 1)[1]
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/js/errors.js" defer>']
    assert 'alt="Time from opened to promoted.' in lead
    assert not re.search(r'(src|href)="https?://', html)  # nothing from a CDN


def test_an_empty_dashboard_says_so(client: Client, people: dict[str, Any]) -> None:
    client.force_login(people["admin"])
    html = client.get("/governance/readiness/").content.decode()
    assert "No change was promoted in the last 30 days." in html
    assert "No versions awaiting removal." in html
    assert "None overdue." in html
    assert "Every artifact has an active owner." in html


def test_many_promotions_draw_one_bar_per_day(
    client: Client, acme: Any, people: dict[str, Any]
) -> None:
    now = timezone.now()
    for i in range(70):
        day = i % 5 + 1
        change_row(
            acme,
            people["author"],
            status=ChangeStatus.PROMOTED,
            created_at=now - day * DAY - 2 * HOUR,
            promoted_at=now - day * DAY,
        )
    client.force_login(people["admin"])
    lead = section(client.get("/governance/readiness/").content.decode(), "lead-time")
    assert len(bars(chart_svg(lead, "lead-chart"))) == 5
    assert "One bar per day" in lead
    assert "70 changes promoted" in lead


def _build(acme: Any, people: dict[str, Any], prompt: Any, n: int) -> None:
    """``n`` more rows behind every part of the dashboard."""
    now = timezone.now()
    author = people["author"]
    for _ in range(n):
        open_change = change_row(acme, author)
        Approval.objects.create(
            change=open_change,
            approver=people["reviewer"],
            requirement="reviewer",
            decision=Decision.APPROVE,
            revision=open_change.revision,
            binding_sha256=open_change.binding_sha256,
        )
        change_row(
            acme,
            author,
            status=ChangeStatus.PROMOTED,
            emergency=True,
            created_at=now - 3 * DAY,
            promoted_at=now - 2 * DAY,
            postmortem_due_at=now - DAY,
        )
        artifact = make_artifact(acme, "prompt", f"a{next(_numbers)}")  # no owner
        services.waiver_grant(
            tenant=acme,
            actor=people["admin"],
            check_kind=CheckKind.OFFLINE_EVALUATION,
            owner=people["reviewer"],
            justification="j",
            mitigation="m",
            expires_at=now + 2 * DAY,
            artifacts=[artifact],
        )
        old = publish(artifact, impact="major", text="Old {{ customer }}.")
        new = publish(artifact, text="New {{ customer }}.")
        Deprecation.objects.create(
            version=old, replacement=new, reason="old", remove_after=now + 10 * DAY
        )
        VersionUsage.objects.create(version=old, consumer="bot", requests=3)


def test_the_query_count_does_not_grow_with_the_rows(
    client: Client, acme: Any, people: dict[str, Any], prompt: Any, django_assert_num_queries: Any
) -> None:
    client.force_login(people["admin"])
    n = 3
    _build(acme, people, prompt, n)
    few, html = page_queries(client, "/governance/readiness/")
    assert len(bars(chart_svg(section(html, "lead-time"), "lead-chart"))) == n
    _build(acme, people, prompt, 2 * n)  # 3n in all
    with django_assert_num_queries(few):
        html = client.get("/governance/readiness/").content.decode()
    assert len(bars(chart_svg(section(html, "lead-time"), "lead-chart"))) == 3 * n
    assert section(html, "postmortems").count("EMERGENCY") == 3 * n
    assert section(html, "deprecations").count("1 consumer, 3 requests") == 3 * n
    assert open_slots(section(html, "approvals"))["administrator"] == 3 * n


def test_the_expiring_list_is_capped_and_links_to_the_rest(
    client: Client, acme: Any, people: dict[str, Any], prompt: Any, settings: Any
) -> None:
    from governance.dashboards.selectors import DASHBOARD_LIST_LIMIT

    for i in range(DASHBOARD_LIST_LIMIT + 2):
        services.waiver_grant(
            tenant=acme,
            actor=people["admin"],
            check_kind=CheckKind.OFFLINE_EVALUATION,
            owner=people["reviewer"],
            justification="j",
            mitigation="m",
            expires_at=timezone.now() + timedelta(days=3, minutes=i),
            artifacts=[prompt],
        )
    client.force_login(people["admin"])
    html = client.get("/governance/readiness/").content.decode()
    rows = section(html, "waivers").split('id="expiring"')[1].split("</table>")[0]
    assert rows.count("<tr><td><a") == DASHBOARD_LIST_LIMIT
    first = Waiver.objects.order_by("expires_at").first()
    assert first is not None
    assert first.reference in rows  # the soonest are shown
    assert f"The {DASHBOARD_LIST_LIMIT} soonest of {DASHBOARD_LIST_LIMIT + 2}" in html
    assert "?state=expiring_soon" in html


def test_long_lists_show_their_first_rows_and_say_how_many(
    client: Client, acme: Any, people: dict[str, Any]
) -> None:
    from governance.dashboards.selectors import DASHBOARD_LIST_LIMIT

    for i in range(DASHBOARD_LIST_LIMIT + 3):
        make_artifact(acme, "prompt", f"orphan-{i:02d}")  # no owner
    client.force_login(people["admin"])
    html = section(client.get("/governance/readiness/").content.decode(), "ownerless")
    assert html.count('<span class="muted">none</span>') == DASHBOARD_LIST_LIMIT
    assert (
        f"The first {DASHBOARD_LIST_LIMIT} of {DASHBOARD_LIST_LIMIT + 3} artifacts without an "
        "active owner." in html
    )


def test_the_lead_time_axis_does_not_repeat_and_quick_changes_keep_a_bar(
    client: Client, acme: Any, people: dict[str, Any]
) -> None:
    """Changes promoted within minutes: distinct ticks in minutes, and no bar vanishes."""
    now = timezone.now()
    for minutes in (0, 3, 12):
        change_row(
            acme,
            people["author"],
            status=ChangeStatus.PROMOTED,
            created_at=now - DAY - minutes * timedelta(minutes=1),
            promoted_at=now - DAY,
        )
    client.force_login(people["admin"])
    svg = chart_svg(
        section(client.get("/governance/readiness/").content.decode(), "lead-time"), "lead-chart"
    )
    heights = bars(svg)
    assert len(heights) == 3
    assert all(h > 0 for h in heights)
    assert len(set(heights)) == 3  # 0, 3 and 12 minutes: three heights, none zero
    labels = y_labels(svg)
    ticks = [label for label in labels if not label.startswith(("median", "p90"))]
    assert ticks == ["0 min", "5 min", "10 min", "15 min"]
    assert len(set(ticks)) == len(ticks)
    assert any(label.startswith("median") for label in labels)
