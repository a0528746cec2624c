"""Notifications about changes: one open per person and reason, phrased as the action, resolved
by the service that ends the reason, marked read when opened (issue 15)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from governance.kernel import notifications as kernel
from governance.kernel.models import Notification
from reviews import services
from reviews.choices import ChangeStatus, Decision
from reviews.services.notifications import (
    check_subject,
    postmortem_subject,
    promote_subject,
    rejected_subject,
    review_subject,
)
from tests.reviews.test_services import evaluation, run_checks
from tests.reviews.test_views import approved, live_v1, page, signed_in, submitted

__all__ = ["live_v1"]  # a fixture, imported so pytest finds it here

pytestmark = pytest.mark.django_db


def open_of(user: Any, subject: str) -> list[Notification]:
    return list(Notification.objects.filter(user=user, subject=subject, resolved_at__isnull=True))


def all_of(user: Any, subject: str) -> list[Notification]:
    return list(Notification.objects.filter(user=user, subject=subject).order_by("created_at"))


# --- services --------------------------------------------------------------------------------


def test_submit_asks_each_person_once_phrased_as_what_to_do(
    open_change: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    change = submitted(open_change, people, prompt_v1)
    subject = review_subject(change)
    (reviewer,) = open_of(people["reviewer"], subject)
    assert reviewer.title == f"Review {change.reference} as reviewer: {change.title}"
    assert "Open the change to approve or reject it." in reviewer.body
    assert reviewer.url == change.get_absolute_url()
    (multi,) = open_of(people["multi"], subject)  # holds two roles: one notification
    assert multi.title.startswith(f"Review {change.reference} as reviewer or administrator: ")
    assert open_of(people["author"], subject) == []


def test_a_filled_slot_resolves_the_request_for_whoever_can_no_longer_fill_one(
    open_change: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    change = submitted(open_change, people, prompt_v1)
    subject = review_subject(change)
    services.approval_decide(change=change, actor=people["reviewer"], decision=Decision.APPROVE)
    (mine,) = all_of(people["reviewer"], subject)
    assert mine.resolved_at is not None
    assert mine.read_at is not None
    assert mine.resolution == "Filled: Reviewer by reviewer."
    # multi can still fill the administrator slot: still open, its wording follows.
    (multi,) = open_of(people["multi"], subject)
    assert multi.title.startswith(f"Review {change.reference} as administrator: ")
    assert len(open_of(people["admin"], subject)) == 1

    services.approval_decide(change=change, actor=people["admin"], decision=Decision.APPROVE)
    change.refresh_from_db()
    assert change.status == ChangeStatus.APPROVED
    assert not Notification.objects.filter(subject=subject, resolved_at__isnull=True).exists()
    assert all_of(people["multi"], subject)[0].resolution == f"{change.reference} was approved."
    # Administrators are asked to promote; the author hears who can.
    (ask,) = open_of(people["admin"], promote_subject(change))
    assert ask.title == f"Promote {change.reference}: every approval is in"
    (told,) = open_of(people["author"], promote_subject(change))
    assert "an administrator can promote it" in told.title


def test_revoking_a_role_resolves_the_requests_it_let_the_person_fill(
    open_change: Any, people: dict[str, Any], prompt_v1: Any, acme: Any
) -> None:
    from accounts import services as accounts

    change = submitted(open_change, people, prompt_v1)
    subject = review_subject(change)
    emails = Notification.objects.count()
    accounts.role_revoke(
        user=people["reviewer"], role="reviewer", tenant=acme, actor=None, reason="Left the team."
    )
    (gone,) = all_of(people["reviewer"], subject)
    assert gone.resolved_at is not None
    assert gone.read_at is not None
    assert gone.resolution == "reviewer's reviewer role in acme was revoked."
    # multi still holds administrator: still asked, for what they can still fill.
    accounts.role_revoke(
        user=people["multi"], role="reviewer", tenant=acme, actor=None, reason="Too busy."
    )
    (multi,) = open_of(people["multi"], subject)
    assert multi.title == f"Review {change.reference} as administrator: {change.title}"
    assert len(all_of(people["multi"], subject)) == 1  # reworded, not a new one
    # Nobody else's request moved, and no notification was added.
    assert len(open_of(people["admin"], subject)) == 1
    assert len(open_of(people["privacy"], subject)) == len(all_of(people["privacy"], subject))
    assert Notification.objects.count() == emails
    # Revoking a role that asks nothing (security officer here) resolves nothing.
    before = list(Notification.objects.filter(resolved_at__isnull=False).values_list("pk"))
    accounts.role_revoke(
        user=people["security"], role="security_officer", tenant=acme, actor=None, reason="r"
    )
    after = list(Notification.objects.filter(resolved_at__isnull=False).values_list("pk"))
    assert after == before


def test_promotion_resolves_the_request_to_promote(
    open_change: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    change = approved(open_change, people, prompt_v1)
    assert open_of(people["admin"], promote_subject(change))
    services.change_promote(change=change, actor=people["admin"])
    (ask,) = all_of(people["admin"], promote_subject(change))
    assert ask.resolved_at is not None
    assert ask.resolution == f"{change.reference} was promoted."
    assert not Notification.objects.filter(
        subject__startswith=f"change:{change.pk}:", resolved_at__isnull=True
    ).exists()


def test_a_rejection_resolves_review_requests_and_asks_the_author_to_revise(
    open_change: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    change = submitted(open_change, people, prompt_v1)
    services.approval_decide(
        change=change, actor=people["reviewer"], decision=Decision.REJECT, comment="Too terse."
    )
    assert not Notification.objects.filter(
        subject=review_subject(change), resolved_at__isnull=True
    ).exists()
    assert (
        all_of(people["admin"], review_subject(change))[0].resolution
        == f"{change.reference} was rejected by reviewer."
    )
    (ask,) = open_of(people["author"], rejected_subject(change))
    assert ask.title == f"Revise or withdraw {change.reference}: reviewer rejected it as reviewer"
    assert ask.body == "Too terse."
    services.change_revise(change=change, actor=people["author"], reason="Say more", title="More")
    assert open_of(people["author"], rejected_subject(change)) == []
    assert all_of(people["author"], rejected_subject(change))[0].resolution.startswith(
        f"{change.reference} was revised to revision 2"
    )


def test_a_resubmission_leaves_one_open_request_per_person(
    open_change: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    change = submitted(open_change, people, prompt_v1)
    services.change_revise(change=change, actor=people["author"], reason="Typo", title="Fixed")
    assert not Notification.objects.filter(
        subject=review_subject(change), resolved_at__isnull=True
    ).exists()  # a draft waits for nobody
    change = services.change_submit(change=change, actor=people["author"])
    for who in ("reviewer", "admin", "multi"):
        rows = all_of(people[who], review_subject(change))
        assert [r.resolved_at is None for r in rows] == [False, True], who
        assert rows[1].title.endswith(": Fixed")
        assert rows[1].dedupe_key == f"review:{change.pk}:r2"
    # Voided approvals on the same revision (new evidence) ask again, still once.
    services.approval_decide(change=change, actor=people["reviewer"], decision=Decision.APPROVE)
    evaluation(change, prompt_v1, safety=0.98)
    assert len(open_of(people["reviewer"], review_subject(change))) == 1


def test_withdrawing_resolves_every_request_about_the_change(
    open_change: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    change = submitted(open_change, people, prompt_v1)
    services.change_withdraw(change=change, actor=people["author"], reason="Not needed")
    rows = Notification.objects.filter(subject=review_subject(change))
    assert rows.count() >= 3
    assert set(rows.values_list("resolution", flat=True)) == {f"{change.reference} was withdrawn."}


def test_a_failed_check_asks_for_the_fix_and_resolves_when_it_passes(
    open_change: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    change = open_change(prompt_v1)
    change = services.change_submit(change=change, actor=people["author"])
    run_checks(change)  # no evaluation evidence: the offline evaluation fails
    subject = check_subject(change, "offline_evaluation")
    (ask,) = open_of(people["author"], subject)
    assert ask.title == (
        f"Attach evaluation evidence to {change.reference}: the Offline evaluation check failed"
    )
    evaluation(change, prompt_v1)
    run_checks(change)
    (ask,) = all_of(people["author"], subject)
    assert ask.resolved_at is not None
    assert ask.resolution.startswith("The Offline evaluation check passed (attempt ")


def test_resolving_is_idempotent_and_a_new_key_replaces_the_open_one(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")

    def send(key: str, title: str = "Do it") -> list[Notification]:
        return kernel.notification_send(
            users=[alice, bob], title=title, dedupe_key=key, subject="thing:1"
        )

    assert len(send("k1")) == 2
    assert send("k1", title="Do it now") == []  # same reason: no new row, wording refreshed
    assert set(Notification.objects.values_list("title", flat=True)) == {"Do it now"}
    assert len(send("k2")) == 2  # a newer reason replaces the open one
    old = Notification.objects.filter(dedupe_key="k1")
    assert set(old.values_list("resolution", flat=True)) == {"Replaced by a newer notification."}
    assert Notification.objects.filter(resolved_at__isnull=True).count() == 2
    assert kernel.notification_resolve(subject="thing:1", users=[alice], reason="Done") == 1
    assert kernel.notification_resolve(subject="thing:1", users=[alice], reason="Again") == 0
    assert Notification.objects.get(user=alice, dedupe_key="k2").resolution == "Done"
    assert kernel.unread_count(alice) == 0
    assert kernel.unread_count(bob) == 1


def test_recording_the_postmortem_resolves_its_reminder(
    open_change: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    change = open_change(prompt_v1, emergency=True)
    evaluation(change, prompt_v1)
    services.change_submit(change=change, actor=people["author"])
    run_checks(change)
    services.approval_decide(change=change, actor=people["admin"], decision="approve")
    services.approval_decide(change=change, actor=people["security"], decision="approve")
    change = services.change_promote(change=change, actor=people["admin"])
    assert change.postmortem_due_at is not None
    later = change.postmortem_due_at + timedelta(days=1)
    assert services.postmortem_reminders_send(now=later) >= 1
    (ask,) = open_of(people["author"], postmortem_subject(change))
    assert ask.title == f"[Emergency] Record the post-mortem of {change.reference}: it is overdue"
    services.postmortem_record(change=change, actor=people["author"], summary="Root cause: x")
    assert open_of(people["author"], postmortem_subject(change)) == []
    assert services.postmortem_reminders_send(now=later + timedelta(days=1)) == 0


# --- pages -----------------------------------------------------------------------------------


def test_opening_a_notification_marks_it_read_and_goes_to_the_change(
    open_change: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    change = submitted(open_change, people, prompt_v1)
    (note,) = open_of(people["reviewer"], review_subject(change))
    client = signed_in(people["reviewer"])
    html = page(client, "/reviews/notifications/")
    assert f'href="/reviews/notifications/{note.pk}/open/"' in html
    response = client.get(f"/reviews/notifications/{note.pk}/open/")
    assert response.status_code == 302
    assert response["Location"] == change.get_absolute_url()
    note.refresh_from_db()
    assert note.read_at is not None
    assert note.resolved_at is None
    # Someone else's notification: not found, and left unread.
    (admins,) = open_of(people["admin"], review_subject(change))
    assert client.get(f"/reviews/notifications/{admins.pk}/open/").status_code == 404
    admins.refresh_from_db()
    assert admins.read_at is None


def test_the_list_puts_open_first_shows_resolved_as_resolved_and_counts_only_open_unread(
    open_change: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    Notification.objects.all().delete()
    change = submitted(open_change, people, prompt_v1)
    kernel.notification_send(
        users=[people["reviewer"]], title="Older news", dedupe_key="news", url="/x/"
    )
    (request,) = open_of(people["reviewer"], review_subject(change))
    Notification.objects.filter(dedupe_key="news").update(
        created_at=request.created_at - timedelta(hours=1)
    )
    services.approval_decide(change=change, actor=people["reviewer"], decision=Decision.APPROVE)
    client = signed_in(people["reviewer"])
    html = page(client, "/reviews/notifications/")
    assert html.index("Older news") < html.index(f"Review {change.reference}")  # open first
    assert '<span class="badge">resolved</span>' in html
    assert "Filled: Reviewer by reviewer." in html
    assert 'id="unread-count">1<' in html  # the news, not the resolved request
    assert "1 unread." in html


def test_the_list_costs_the_same_queries_whatever_its_length(
    people: dict[str, Any], django_assert_num_queries: Any, acme: Any
) -> None:
    reviewer = people["reviewer"]
    client = signed_in(reviewer)

    def make(n: int, start: int) -> None:
        for i in range(start, start + n):
            kernel.notification_send(
                users=[reviewer], tenant=acme, title=f"N{i}", dedupe_key=f"n{i}", url="/x/"
            )

    make(2, 0)
    client.get("/reviews/notifications/")  # warm the session and caches
    with CaptureQueriesContext(connection) as few:
        page(client, "/reviews/notifications/")
    make(20, 2)
    with django_assert_num_queries(len(few.captured_queries)):
        html = page(client, "/reviews/notifications/")
    assert html.count('class="notification-title"') == 22
