"""The change page with waivers, lifecycle badges and emergency follow-up: each check's verdict
(passed, waived by which waiver until when, or blocked and why), the promotion blockers, the
deprecated versions it touches, and the post-mortem of a promoted emergency change."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from registry import services as registry
from reviews import services
from reviews.choices import ChangeStatus, CheckKind, Decision
from reviews.models import ChangeRequest
from reviews.waivers import services as governance
from reviews.waivers.models import Waiver
from tests.reviews.test_services import evaluation, run_checks
from tests.reviews.test_views import page, promoted, section, signed_in, url

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)
EVAL = CheckKind.OFFLINE_EVALUATION


@pytest.fixture
def failing_change(
    open_change: Any, people: dict[str, Any], prompt_v1: Any, prompt_v2: Any
) -> ChangeRequest:
    """v1 is active with safety 0.97; a change to v2 reports 0.5, so its offline evaluation fails."""
    promoted(open_change, people, prompt_v1)
    worse = open_change(prompt_v2)
    evaluation(worse, prompt_v2, safety=0.5)
    services.change_submit(change=worse, actor=people["author"])
    assert run_checks(worse)[EVAL] == "failed"
    return worse


def grant(acme: Any, people: dict[str, Any], change: Any, **kw: Any) -> Waiver:
    kw.setdefault("expires_at", timezone.now() + 20 * DAY)
    return governance.waiver_grant(
        tenant=acme,
        actor=people["admin"],
        check_kind=EVAL,
        owner=people["reviewer"],
        justification="The safety drop is a scoring artefact of the new eval set.",
        mitigation="Human review of 5% of replies.",
        change=change,
        **kw,
    )


def verdict(html: str, kind: str = EVAL) -> str:
    return html.split(f'id="verdict-{kind}"')[1].split("</td>")[0]


def waiver_path(waiver: Waiver) -> str:
    return f"/governance/waivers/{waiver.reference}/"


# --- check verdicts -----------------------------------------------------------------------


def test_a_failed_check_without_a_waiver_is_blocked_and_admins_may_request_one(
    people: dict[str, Any], failing_change: ChangeRequest
) -> None:
    html = page(signed_in(people["admin"]), url(failing_change))
    cell = verdict(html)
    assert "failed — blocked" in cell
    request_link = f'/governance/waivers/new/?change={failing_change.reference}&amp;check={EVAL}"'
    assert request_link in cell
    assert "Request/grant a waiver" in cell
    assert "passed" in verdict(html, CheckKind.MODEL_PINS)
    blockers = section(html, "promotion")
    assert "check Offline evaluation failed" in blockers

    # Reviewers and the author see the verdict, not the link.
    for who in ("reviewer", "author"):
        cell = verdict(page(signed_in(people[who]), url(failing_change)))
        assert "failed — blocked" in cell
        assert "Request/grant a waiver" not in cell


def test_a_waived_check_names_its_waiver_and_expiry(
    acme: Any, people: dict[str, Any], failing_change: ChangeRequest
) -> None:
    waiver = grant(acme, people, failing_change)
    html = page(signed_in(people["reviewer"]), url(failing_change))
    cell = verdict(html)
    assert "failed — waived" in cell
    assert f'<a href="{waiver_path(waiver)}">{waiver.reference}</a>' in cell
    assert f'until <time datetime="{waiver.expires_at.isoformat()}">' in cell
    assert "Request/grant a waiver" not in verdict(
        page(signed_in(people["admin"]), url(failing_change))
    )
    assert "Offline evaluation" not in section(html, "promotion")


def test_an_expired_waiver_blocks_again_and_the_page_says_why(
    acme: Any, people: dict[str, Any], failing_change: ChangeRequest
) -> None:
    waiver = grant(acme, people, failing_change)
    for who in ("reviewer", "admin"):
        services.approval_decide(
            change=failing_change, actor=people[who], decision=Decision.APPROVE
        )
    expired_at = timezone.now() - DAY
    Waiver.objects.filter(pk=waiver.pk).update(starts_at=expired_at - DAY, expires_at=expired_at)
    html = page(signed_in(people["admin"]), url(failing_change))
    cell = verdict(html)
    assert "failed — blocked" in cell
    assert (
        f'<a href="{waiver_path(waiver)}">{waiver.reference}</a> expired on {expired_at:%Y-%m-%d %H:%M} UTC'
        in cell
    )
    assert "Request/grant a waiver" in cell
    blockers = section(html, "promotion")
    assert f"waiver {waiver.reference} expired on {expired_at:%Y-%m-%d %H:%M} UTC" in blockers
    assert '<button type="submit" disabled>Promote</button>' in blockers


def test_a_revoked_waiver_says_it_was_revoked(
    acme: Any, people: dict[str, Any], failing_change: ChangeRequest
) -> None:
    waiver = grant(acme, people, failing_change)
    governance.waiver_revoke(waiver=waiver, actor=people["admin"], reason="The eval is fine.")
    cell = verdict(page(signed_in(people["reviewer"]), url(failing_change)))
    assert "failed — blocked" in cell
    assert f"{waiver.reference}</a> was revoked on" in cell


def test_a_promoted_change_shows_the_verdict_it_was_promoted_under(
    acme: Any, people: dict[str, Any], failing_change: ChangeRequest
) -> None:
    waiver = grant(acme, people, failing_change)
    for who in ("reviewer", "admin"):
        services.approval_decide(
            change=failing_change, actor=people[who], decision=Decision.APPROVE
        )
    done = services.change_promote(change=failing_change, actor=people["admin"])
    assert done.promoted_at is not None
    # The waiver runs out later: the promotion was still made under it.
    Waiver.objects.filter(pk=waiver.pk).update(expires_at=done.promoted_at + timedelta(seconds=1))
    html = page(signed_in(people["admin"]), url(done))
    cell = verdict(html)
    assert "failed — waived" in cell
    assert waiver.reference in cell
    assert "when it was promoted" in html
    assert "Request/grant a waiver" not in html


def test_change_page_queries_do_not_grow_with_waivers(
    acme: Any,
    people: dict[str, Any],
    failing_change: ChangeRequest,
    django_assert_max_num_queries: Any,
) -> None:
    grant(acme, people, failing_change, expires_at=timezone.now() + DAY)
    client = signed_in(people["admin"])
    client.get(url(failing_change))
    with django_assert_max_num_queries(63) as few:  # +3: passkey sign-off (a constant)
        client.get(url(failing_change))
    made = [
        grant(acme, people, failing_change, expires_at=timezone.now() + i * DAY)
        for i in range(2, 8)
    ]
    for waiver in made[:3]:
        governance.waiver_revoke(waiver=waiver, actor=people["admin"], reason="no")
    with django_assert_max_num_queries(len(few.captured_queries)):
        html = page(client, url(failing_change))
    assert "failed — waived" in verdict(html)


# --- deprecated versions on the change page -----------------------------------------------


def test_change_items_say_when_a_version_is_deprecated(
    open_change: Any, people: dict[str, Any], prompt_v1: Any, prompt_v2: Any
) -> None:
    promoted(open_change, people, prompt_v1)
    second = promoted(open_change, people, prompt_v2)  # v1 is no longer active
    registry.version_deprecate(
        version=prompt_v1,
        replacement=prompt_v2,
        reason="Politer.",
        remove_after_days=30,
        actor=people["admin"],
    )
    items = section(page(signed_in(people["reviewer"]), url(second)), "items")
    current = items.split('scope="row">Current')[1].split("</tr>")[0]
    proposed = items.split('scope="row">Proposed')[1].split("</tr>")[0]
    assert "lifecycle-deprecated" in current
    assert f">{prompt_v2.version}</a>" in current
    assert "lifecycle-" not in proposed


# --- emergency changes --------------------------------------------------------------------


@pytest.fixture
def emergency(open_change: Any, people: dict[str, Any], prompt_v1: Any) -> ChangeRequest:
    change = open_change(prompt_v1, emergency=True, title="Hotfix")
    evaluation(change, prompt_v1)
    services.change_submit(change=change, actor=people["author"])
    run_checks(change)
    services.approval_decide(change=change, actor=people["admin"], decision="approve")  # owner
    services.approval_decide(change=change, actor=people["security"], decision="approve")
    return services.change_promote(change=change, actor=people["admin"])


def test_emergency_changes_are_labelled_on_every_list(
    open_change: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    change = open_change(prompt_v1, emergency=True)
    author = signed_in(people["author"])
    assert 'badge badge-emergency">EMERGENCY' in section(page(author, "/reviews/"), "mine")
    rows = page(author, "/reviews/changes/").split('id="changes"')[1]
    assert change.reference in rows
    assert "badge-emergency" in rows
    html = page(author, url(change))
    assert 'class="emergency-banner"' in html
    assert "a post-mortem is due after promotion" in html
    services.change_submit(change=change, actor=people["author"])
    waiting = section(page(signed_in(people["security"]), "/reviews/"), "waiting")
    assert change.reference in waiting
    assert "badge-emergency" in waiting


def test_a_promoted_emergency_change_shows_its_post_mortem_due_date(
    people: dict[str, Any], emergency: ChangeRequest
) -> None:
    assert emergency.postmortem_due_at is not None
    html = page(signed_in(people["author"]), url(emergency))
    block = section(html, "postmortem")
    assert f"{emergency.postmortem_due_at:%Y-%m-%d %H:%M}" in block
    assert "OVERDUE" not in block
    assert 'name="summary"' in block
    # Reviewers may read it but not record it.
    block = section(page(signed_in(people["reviewer"]), url(emergency)), "postmortem")
    assert 'name="summary"' not in block
    assert "records it" in block

    ChangeRequest.objects.filter(pk=emergency.pk).update(postmortem_due_at=timezone.now() - DAY)
    html = page(signed_in(people["author"]), url(emergency))
    assert "OVERDUE" in section(html, "postmortem")
    assert 'class="overdue-date"' in html
    assert "is OVERDUE" in html.split('id="emergency"')[1].split("</p>")[0]


def test_record_the_post_mortem_from_the_change_page(
    people: dict[str, Any], emergency: ChangeRequest
) -> None:
    client = signed_in(people["security"])
    # Post/redirect/get: a bad form comes back on the change page, at its form.
    response = client.post(url(emergency, "postmortem"), {"summary": "  ", "url": ""}, follow=True)
    assert response.redirect_chain == [(f"{url(emergency)}#postmortem-form", 302)]
    assert 'class="field-error"' in section(response.content.decode(), "postmortem")
    response = client.post(
        url(emergency, "postmortem"), {"summary": "Root cause.", "url": "ftp://x"}, follow=True
    )
    assert response.redirect_chain == [(f"{url(emergency)}#postmortem-form", 302)]
    block = section(response.content.decode(), "postmortem")
    assert "Root cause.</textarea>" in block  # what was typed is kept
    assert "http(s) link" in block.split('name="url"')[1]
    emergency.refresh_from_db()
    assert emergency.postmortem_done_at is None

    response = signed_in(people["reviewer"]).post(
        url(emergency, "postmortem"), {"summary": "x", "url": ""}, follow=True
    )
    assert response.redirect_chain == [(f"{url(emergency)}#postmortem-form", 302)]
    assert "can record it" in response.content.decode()

    response = client.post(
        url(emergency, "postmortem"),
        {"summary": "A bad prompt slipped through.", "url": "https://wiki.example/pm/1"},
    )
    assert response.status_code == 302
    assert response["Location"].endswith("#postmortem")
    emergency.refresh_from_db()
    assert emergency.postmortem_by == people["security"]
    assert Event.objects.filter(kind=EventKind.POSTMORTEM_RECORDED).count() == 1
    html = page(client, url(emergency))
    block = section(html, "postmortem")
    assert "recorded" in block
    assert "security" in block
    assert "A bad prompt slipped through." in block
    assert 'href="https://wiki.example/pm/1"' in block
    assert 'name="summary"' not in block
    assert "post-mortem was recorded" in html.split('id="emergency"')[1].split("</p>")[0]

    # Again: refused, said as a message since the form is gone; nothing more is written.
    response = client.post(
        url(emergency, "postmortem"), {"summary": "again", "url": ""}, follow=True
    )
    assert response.redirect_chain == [(f"{url(emergency)}#postmortem-form", 302)]
    assert "already recorded" in response.content.decode()
    assert Event.objects.filter(kind=EventKind.POSTMORTEM_RECORDED).count() == 1


def test_a_change_that_is_not_an_emergency_has_no_post_mortem(
    open_change: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    change = promoted(open_change, people, prompt_v1)
    html = page(signed_in(people["admin"]), url(change))
    assert 'id="postmortem"' not in html
    assert "emergency-banner" not in html
    response = signed_in(people["admin"]).post(
        url(change, "postmortem"), {"summary": "x"}, follow=True
    )
    assert response.redirect_chain == [(f"{url(change)}#postmortem-form", 302)]
    assert "it has no post-mortem" in response.content.decode()
    assert ChangeRequest.objects.get(pk=change.pk).status == ChangeStatus.PROMOTED
