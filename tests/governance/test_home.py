"""The home page, "what needs me": each section with real data, who sees what, nothing from a
tenant one does not belong to, role labels, and a query count fixed whatever the rows."""

from __future__ import annotations

import re
from datetime import timedelta
from itertools import count
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from reviews import services as reviews
from reviews.choices import ChangeStatus, Decision, RolloutStrategy
from reviews.models import Approval, ChangeRequest
from reviews.waivers import services as waivers
from rollouts.choices import RolloutState
from tests import factories
from tests.factories import approved_change, grant_waiver, rollout_row, submitted_change
from tests.pages import page_queries
from tests.reviews.conftest import PINS, make_artifact, people, prompt, publish

__all__ = ["people", "prompt"]  # fixtures used here

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)
_numbers = count(5000)


def change_row(tenant: Any, author: Any, **fields: Any) -> ChangeRequest:
    """A change request as a row, submitted now unless ``fields`` say otherwise."""
    fields.setdefault("submitted_at", timezone.now())
    return factories.change_row(tenant, author, **fields)


def postmortem_row(tenant: Any, author: Any, due_in: timedelta) -> ChangeRequest:
    now = timezone.now()
    return change_row(
        tenant,
        author,
        status=ChangeStatus.PROMOTED,
        emergency=True,
        promoted_at=now - DAY,
        postmortem_due_at=now + due_in,
    )


def home(client: Client, user: Any) -> str:
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    return response.content.decode()


def section(html: str, name: str) -> str:
    match = re.search(rf'<section[^>]*id="{name}"[^>]*>(.*?)</section>', html, re.S)
    assert match is not None, name
    return match.group(1)


def counted(html: str, name: str) -> int:
    match = re.search(rf'<section[^>]*id="{name}" data-count="(\d+)"', html)
    assert match is not None, name
    return int(match.group(1))


def listed(html: str, name: str, attribute: str = "data-change") -> list[str]:
    return re.findall(rf'<li {attribute}="([^"]+)"', section(html, name))


@pytest.fixture
def globex_people(make_user: Any, globex: Any) -> dict[str, Any]:
    return {
        "author": make_user("g-author", globex="member"),
        "admin": make_user("g-admin", globex=["member", "administrator"]),
    }


def test_an_empty_home_says_so_in_every_section(client: Client, people: dict[str, Any]) -> None:
    html = home(client, people["reviewer"])
    assert "Nothing waits for your sign-off." in html
    assert "None of your changes is blocked." in html
    assert "No approved change waits for you to promote it." in html
    assert "No rollout waits for you." in html
    assert "No waiver of yours expires soon." in html
    assert "No post-mortem is due from you." in html
    for name in ("waiting", "blocked", "promote", "rollouts", "waivers", "postmortems"):
        assert counted(html, name) == 0


def test_changes_waiting_for_my_role_link_to_the_sign_off(
    client: Client, people: dict[str, Any], acme: Any, globex_people: dict[str, Any], globex: Any
) -> None:
    mine = change_row(acme, people["author"])
    signed = change_row(mine.tenant, people["author"])
    Approval.objects.create(
        change=signed,
        approver=people["reviewer"],
        requirement="reviewer",
        decision=Decision.APPROVE,
        revision=signed.revision,
        binding_sha256=signed.binding_sha256,
    )
    security_only = change_row(mine.tenant, people["author"], requirements=["security_officer"])
    change_row(globex, globex_people["author"], requirements=["reviewer"])  # not my tenant
    html = home(client, people["reviewer"])
    assert listed(html, "waiting") == [mine.reference]
    assert counted(html, "waiting") == 1
    assert f'href="{mine.get_absolute_url()}#approvals"' in html
    assert "as Reviewer" in section(html, "waiting")
    # The security officer sees the one that needs them; the author waits on nobody.
    assert listed(home(client, people["security"]), "waiting") == [security_only.reference]
    assert listed(home(client, people["author"]), "waiting") == []


def test_my_blocked_changes_say_why_with_the_link_that_fixes_it(
    client: Client, people: dict[str, Any], prompt: Any
) -> None:
    version = publish(prompt, impact="major", text="Qualify {{ customer }}.", metadata=PINS)
    change = submitted_change(
        people, version, title="No evidence yet"
    )  # offline evaluation fails: no evidence attached
    rejected = change_row(prompt.tenant, people["author"], status=ChangeStatus.REJECTED)
    change_row(prompt.tenant, people["reviewer"])  # someone else's: not mine to fix
    html = home(client, people["author"])
    assert listed(html, "blocked") == [change.reference, rejected.reference]
    blocked = section(html, "blocked")
    url = change.get_absolute_url()
    assert (
        f'<a href="{url}#evidence">Offline evaluation failed: attach evaluation evidence</a>'
        in blocked
    )
    assert f'href="{url}#approvals">missing approval from Reviewer, Administrator</a>' in blocked
    assert (
        f'href="{rejected.get_absolute_url()}#approvals">rejected: revise and resubmit' in blocked
    )
    # The reviewer sees only their own change in review (it waits for approvals).
    assert counted(home(client, people["reviewer"]), "blocked") == 1


def test_a_check_evidence_cannot_fix_links_to_its_row_on_the_change_page(
    client: Client, people: dict[str, Any], prompt: Any
) -> None:
    version = publish(prompt, impact="major", text="Qualify {{ customer }}.")  # no pinned model
    change = submitted_change(people, version, title="Unpinned")
    blocked = section(home(client, people["author"]), "blocked")
    assert (
        f'href="{change.get_absolute_url()}#check-model_pins">'
        "Pinned models and prompt hashes failed: see what would pass it</a>"
    ) in blocked


def test_a_waived_failure_does_not_block_and_a_lapsed_waiver_says_so(
    client: Client, people: dict[str, Any], prompt: Any
) -> None:
    version = publish(prompt, impact="major", text="Qualify {{ customer }}.", metadata=PINS)
    submitted_change(people, version, title="Waived")
    waiver = grant_waiver(
        prompt.tenant, people["admin"], people["reviewer"], expires_in=30 * DAY, artifacts=[prompt]
    )
    blocked = section(home(client, people["author"]), "blocked")
    assert "Offline evaluation failed" not in blocked
    assert "missing approval" in blocked
    waivers.waiver_revoke(waiver=waiver, actor=people["admin"], reason="no longer justified")
    blocked = section(home(client, people["author"]), "blocked")
    assert "Offline evaluation failed" in blocked
    assert f'href="{waiver.get_absolute_url()}">waiver {waiver.reference} was revoked' in blocked


def test_approved_changes_are_offered_to_who_may_promote(
    client: Client, people: dict[str, Any], prompt: Any, root: Any
) -> None:
    version = publish(prompt, impact="major", text="Qualify {{ customer }}.", metadata=PINS)
    change = approved_change(people, version)
    html = home(client, people["admin"])
    assert listed(html, "promote") == [change.reference]
    assert f'href="{change.get_absolute_url()}#promotion"' in html
    assert listed(home(client, root), "promote") == [change.reference]  # platform admin
    for who in ("reviewer", "author", "security"):
        assert listed(home(client, people[who]), "promote") == [], who
    # Approved, so not blocked for its author.
    assert listed(home(client, people["author"]), "blocked") == []


def test_rollouts_needing_a_decision_go_to_their_administrators(
    client: Client, people: dict[str, Any], acme: Any, globex: Any, globex_people: dict[str, Any]
) -> None:
    paused = rollout_row(acme, people["author"], state=RolloutState.PAUSED)
    waves = rollout_row(acme, people["author"])  # tenant waves advance by hand
    rollout_row(acme, people["author"], strategy=RolloutStrategy.CANARY)  # the analysis drives it
    rollout_row(acme, people["author"], state=RolloutState.SUCCEEDED)
    rollout_row(globex, globex_people["author"], state=RolloutState.PAUSED)
    html = home(client, people["admin"])
    assert listed(html, "rollouts", "data-rollout") == [paused.reference, waves.reference]
    rows = section(html, "rollouts")
    assert "paused: resume, roll back or abort" in rows
    assert "waiting for the next step" in rows
    assert ">Paused</span>" in rows  # the label, not the value
    assert "Tenant-scoped" in rows
    assert listed(home(client, people["reviewer"]), "rollouts", "data-rollout") == []


def test_waivers_expiring_soon_for_who_granted_owns_or_is_excused_by_them(
    client: Client, people: dict[str, Any], prompt: Any, globex: Any
) -> None:
    admin, owner = people["admin"], people["privacy"]
    soon = grant_waiver(prompt.tenant, admin, owner, expires_in=3 * DAY, artifacts=[prompt])
    grant_waiver(prompt.tenant, admin, owner, expires_in=30 * DAY, artifacts=[prompt])
    for who in ("admin", "privacy"):  # granted it, owns it
        html = home(client, people[who])
        assert listed(html, "waivers", "data-waiver") == [soon.reference], who
        assert f'href="{soon.get_absolute_url()}"' in html
    assert listed(home(client, people["reviewer"]), "waivers", "data-waiver") == []
    # An author whose open change touches the waived artifact is told too.
    reviews.change_create(
        tenant=prompt.tenant,
        actor=people["reviewer"],
        title="Touches the prompt",
        rollback_plan="Roll back.",
        proposed=[publish(prompt, impact="major", text="Hi {{ customer }}.", metadata=PINS)],
    )
    assert listed(home(client, people["reviewer"]), "waivers", "data-waiver") == []  # a draft
    ChangeRequest.objects.filter(author=people["reviewer"]).update(status=ChangeStatus.IN_REVIEW)
    assert listed(home(client, people["reviewer"]), "waivers", "data-waiver") == [soon.reference]


def test_postmortems_due_for_who_must_write_them(
    client: Client, people: dict[str, Any], acme: Any, globex: Any, globex_people: dict[str, Any]
) -> None:
    late = postmortem_row(acme, people["author"], -DAY)
    due = postmortem_row(acme, people["author"], 2 * DAY)
    done = postmortem_row(acme, people["author"], -DAY)
    ChangeRequest.objects.filter(pk=done.pk).update(postmortem_done_at=timezone.now())
    postmortem_row(globex, globex_people["author"], -DAY)
    for who in ("author", "security", "admin"):
        html = home(client, people[who])
        assert listed(html, "postmortems") == [late.reference, due.reference], who
    html = home(client, people["author"])
    assert f'href="{late.get_absolute_url()}#postmortem"' in html
    assert section(html, "postmortems").count("overdue</span>") == 1
    assert listed(home(client, people["reviewer"]), "postmortems") == []


def test_nothing_from_a_tenant_i_do_not_belong_to(
    client: Client, people: dict[str, Any], globex: Any, globex_people: dict[str, Any]
) -> None:
    """globex's items of every kind, seen by its administrator, never reach acme's."""
    g_author, g_admin = globex_people["author"], globex_people["admin"]
    change_row(globex, g_author, requirements=["administrator"])
    change_row(globex, g_author, status=ChangeStatus.APPROVED, requirements=[])
    rollout_row(globex, g_author, state=RolloutState.PAUSED)
    postmortem_row(globex, g_admin, -DAY)
    globex_html = home(client, g_admin)
    for name in ("waiting", "promote", "rollouts", "postmortems"):
        assert counted(globex_html, name) == 1, name
    acme_html = home(client, people["admin"])
    for name in ("waiting", "blocked", "promote", "rollouts", "waivers", "postmortems"):
        assert counted(acme_html, name) == 0, name
    assert "globex" not in acme_html


def test_roles_show_their_labels(client: Client, people: dict[str, Any]) -> None:
    html = home(client, people["privacy"])
    assert '<span class="badge" data-role="privacy_officer">Privacy officer</span>' in html
    assert ">privacy_officer<" not in html


def _build(acme: Any, people: dict[str, Any], prompt: Any, n: int) -> None:
    for _ in range(n):
        change_row(acme, people["author"])  # waiting for the admin, blocked for the author
        change_row(acme, people["author"], status=ChangeStatus.APPROVED, requirements=[])
        change_row(acme, people["admin"], status=ChangeStatus.REJECTED)
        rollout_row(acme, people["author"], state=RolloutState.PAUSED)
        postmortem_row(acme, people["admin"], -DAY)
        grant_waiver(
            acme,
            people["admin"],
            people["reviewer"],
            expires_in=2 * DAY,
            artifacts=[make_artifact(acme, "prompt", f"a{next(_numbers)}")],
        )


def test_the_query_count_does_not_grow_with_the_rows(
    client: Client, people: dict[str, Any], acme: Any, prompt: Any
) -> None:
    client.force_login(people["admin"])
    _build(acme, people, prompt, 1)
    few, html = page_queries(client, "/")
    assert [counted(html, s) for s in ("waiting", "blocked", "promote", "rollouts", "waivers")] == [
        1,
        1,
        1,
        1,
        1,
    ]
    _build(acme, people, prompt, 6)
    many, html = page_queries(client, "/")
    assert counted(html, "waiting") == 7
    assert counted(html, "blocked") == 7
    assert counted(html, "promote") == 7
    assert counted(html, "rollouts") == 7
    assert counted(html, "waivers") == 7
    assert counted(html, "postmortems") == 7
    assert many == few


def test_the_favicon_is_linked_and_favicon_ico_does_not_404(
    client: Client, people: dict[str, Any]
) -> None:
    from django.contrib.staticfiles import finders

    response = Client().get("/favicon.ico")  # browsers ask before anyone logs in
    assert response.status_code == 301
    assert response["Location"] == "/static/favicon.svg"
    assert finders.find("favicon.svg") is not None
    html = home(client, people["reviewer"])
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html
