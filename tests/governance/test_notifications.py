"""Email of notifications: queued after the commit, sent by a worker, stamped only when sent.

The notification rows not stamped ``emailed_at`` are the outbox; a failing mail server or
broker never fails the request that committed the notification.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from governance.celery import app
from governance.kernel import notifications as services
from governance.kernel.models import Notification
from governance.tasks import notification_email
from tests.reviews.conftest import _builtin_classes, open_change, people, prompt, prompt_v1
from tests.reviews.test_services import evaluation

# Fixtures used here (imported so pytest finds them outside tests/reviews).
__all__ = ["_builtin_classes", "open_change", "people", "prompt", "prompt_v1"]

pytestmark = pytest.mark.django_db


class BrokenBackend:
    """A mail backend whose server refuses every message."""

    def __init__(self, **kwargs: Any) -> None:
        pass

    def send_messages(self, messages: Any) -> int:
        raise ConnectionRefusedError("mail server down")


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The notification ids handed to the email task (the broker is not needed)."""
    sent: list[int] = []
    monkeypatch.setattr(notification_email, "delay", lambda pk: sent.append(pk))
    return sent


@pytest.fixture
def eager() -> Iterator[None]:
    """Tasks run in the calling process, as if a worker took them at once."""
    app.conf.update(task_always_eager=True)
    try:
        yield
    finally:
        app.conf.update(task_always_eager=False)


def notify(users: list[Any], key: str = "k1") -> list[Notification]:
    return services.notification_send(
        users=users, title="Look", body="Body", url="/x/", dedupe_key=key
    )


def test_email_is_queued_after_the_commit_once_per_person_with_an_address(
    make_user: Any, queued: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    alice, bob, nomail = make_user("alice"), make_user("bob"), make_user("nomail")
    nomail.email = ""
    nomail.save()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        notes = notify([alice, bob, nomail, alice])
        assert queued == []  # nothing leaves before the commit
    assert len(notes) == 3
    assert len(callbacks) == 2
    by_user = {n.user.username: n for n in notes}
    assert sorted(queued) == sorted([by_user["alice"].pk, by_user["bob"].pk])
    assert all(n.emailed_at is None for n in Notification.objects.all())  # queued, not sent
    assert by_user["nomail"].email_queued_at is None
    with django_capture_on_commit_callbacks(execute=True):
        assert notify([alice, bob], key="k1") == []  # the same key again: nothing new
    assert len(queued) == 2


def test_sending_stamps_once_and_a_second_attempt_sends_nothing(make_user: Any) -> None:
    (note,) = notify([make_user("alice")])
    assert services.notification_email_send(notification_id=note.pk) is True
    assert services.notification_email_send(notification_id=note.pk) is False
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@example.com"]
    assert message.subject == "Look"
    assert message.body == "Body\n\nhttp://127.0.0.1:8000/x/"
    assert message.extra_headers["Message-ID"].startswith(f"<notification.{note.pk}.")
    note.refresh_from_db()
    assert note.emailed_at is not None


def test_a_failed_send_is_not_stamped_and_is_sent_later(make_user: Any, settings: Any) -> None:
    (note,) = notify([make_user("alice")])
    settings.EMAIL_BACKEND = f"{__name__}.BrokenBackend"
    with pytest.raises(ConnectionRefusedError):
        services.notification_email_send(notification_id=note.pk)
    note.refresh_from_db()
    assert note.emailed_at is None  # never stamped when sending failed
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert services.notification_email_send(notification_id=note.pk) is True
    note.refresh_from_db()
    assert note.emailed_at is not None
    assert len(mail.outbox) == 1


@pytest.mark.usefixtures("eager")
@pytest.mark.django_db(transaction=True)
def test_a_broken_mail_server_never_fails_a_committed_submit(
    settings: Any, people: dict[str, Any], open_change: Any, prompt_v1: Any, token_client: Any
) -> None:
    settings.EMAIL_BACKEND = f"{__name__}.BrokenBackend"
    change = open_change(prompt_v1)
    evaluation(change, prompt_v1)
    client = token_client(people["author"])
    resp = client.post(f"/api/v1/change-requests/{change.reference}/submit/")
    assert resp.status_code == 200, resp.content
    assert resp.json()["status"] == "in_review"
    notes = Notification.objects.filter(dedupe_key__startswith=f"review:{change.pk}:")
    assert notes.exists()  # the reviewers were told in the app ...
    assert not notes.filter(emailed_at__isnull=False).exists()  # ... and no email is stamped
    # An unimportable backend, the other way a mail setup breaks, is no different.
    settings.EMAIL_BACKEND = "no.such.EmailBackend"
    resp = client.post(f"/api/v1/change-requests/{change.reference}/withdraw/")
    assert resp.status_code == 200, resp.content


def test_the_outbox_requeues_what_was_never_stamped_once_per_retry_period(
    make_user: Any, queued: list[int], settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.NOTIFICATION_EMAIL_RETRY_AFTER_SECONDS = 60
    alice, bob, nomail = make_user("alice"), make_user("bob"), make_user("nomail")
    nomail.email = ""
    nomail.save()
    lost, sent, fresh, silent = (
        notify([alice], "lost")[0],  # its worker died before sending
        notify([bob], "sent")[0],
        notify([alice], "fresh")[0],  # queued a moment ago: still in the queue
        notify([nomail], "silent")[0],  # nobody to email
    )
    long_ago = timezone.now() - timedelta(minutes=5)
    Notification.objects.filter(pk__in=[lost.pk, sent.pk]).update(email_queued_at=long_ago)
    Notification.objects.filter(pk=silent.pk).update(created_at=long_ago)
    services.notification_email_send(notification_id=sent.pk)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.notification_outbox_requeue() == 1
    assert queued == [lost.pk]
    with django_capture_on_commit_callbacks(execute=True):
        assert services.notification_outbox_requeue() == 0  # claimed: not queued twice
    assert queued == [lost.pk]
    lost.refresh_from_db()
    assert lost.email_queued_at is not None
    assert lost.email_queued_at > long_ago
    assert fresh.pk not in queued
    assert silent.pk not in queued


def test_a_broker_that_is_down_leaves_the_email_to_the_outbox(
    make_user: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    def down(pk: int) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(notification_email, "delay", down)
    with django_capture_on_commit_callbacks(execute=True):
        (note,) = notify([make_user("alice")])
    note.refresh_from_db()
    assert note.emailed_at is None
    assert note.email_queued_at is not None
