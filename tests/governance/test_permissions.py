"""One rule per action (reviews.waivers.permissions): the service refuses with the predicate's reason,
and the pages show the action exactly to those the predicate allows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from governance.kernel import permissions as kernel_permissions
from governance.kernel.errors import Forbidden
from governance.kernel.events.models import Checkpoint, Event, VerificationRun
from governance.kernel.events.services import checkpoint_create, verification_start
from governance.kernel.permissions import Decision
from reviews.choices import CheckKind
from reviews.waivers import permissions
from reviews.waivers import services as waivers
from reviews.waivers.models import Waiver
from tests.factories import grant_waiver
from tests.reviews.conftest import open_change, people, prompt, prompt_v1

__all__ = ["open_change", "people", "prompt", "prompt_v1"]  # fixtures used here

pytestmark = pytest.mark.django_db


@pytest.fixture
def change(open_change: Any, prompt_v1: Any) -> Any:
    return open_change(prompt_v1)


def _grant(tenant: Any, actor: Any, owner: Any, **kw: Any) -> Waiver:
    kw.setdefault("check_kind", CheckKind.POLICY)
    return grant_waiver(tenant, actor, owner, expires_in=timedelta(days=5), **kw)


# --- verification and checkpoints: the service is the enforcement point --------------------


@pytest.mark.usefixtures("acme")
def test_only_administrators_may_start_a_verification(
    people: dict[str, Any], client: Client
) -> None:
    reason = "Only administrators can start a verification."
    assert kernel_permissions.can_start_verification(people["reviewer"]) == Decision(False, reason)
    assert kernel_permissions.can_start_verification(people["admin"])
    with pytest.raises(Forbidden) as refused:
        verification_start(actor=people["security"])
    assert refused.value.message == reason
    assert not VerificationRun.objects.exists()
    run = verification_start(actor=people["admin"])
    assert run.requested_by == people["admin"]
    # The page offers the button only to those the rule allows, and a forced POST says why.
    client.force_login(people["reviewer"])
    assert "Verify the log" not in client.get("/governance/").content.decode()
    response = client.post("/governance/verify/")
    assert response["Location"] == "/governance/"  # back to the overview, which says why
    assert [str(m) for m in get_messages(response.wsgi_request)] == [reason]
    assert VerificationRun.objects.count() == 1
    client.force_login(people["admin"])
    assert "Verify the log" in client.get("/governance/").content.decode()
    response = client.post("/governance/verify/")
    started = VerificationRun.objects.exclude(pk=run.pk).get()
    assert started.requested_by == people["admin"]
    assert response["Location"] == started.get_absolute_url()


@pytest.mark.usefixtures("acme")
def test_only_a_platform_administrator_makes_a_checkpoint_on_demand(
    people: dict[str, Any], root: Any, token_client: Any
) -> None:
    assert Event.objects.exists()  # granting the people their roles was logged
    reason = "Only a platform administrator can make a checkpoint on demand."
    with pytest.raises(Forbidden) as refused:
        checkpoint_create(actor=people["admin"])  # a tenant's administrator is not enough
    assert refused.value.message == reason
    assert not Checkpoint.objects.exists()
    answer = token_client(people["admin"]).post("/api/v1/checkpoints/")
    assert answer.status_code == 403
    assert reason in answer.json()["error"]["message"]
    assert not Checkpoint.objects.exists()
    made = checkpoint_create(actor=root)
    assert made is not None
    assert made.tree_size == Event.objects.count()
    assert checkpoint_create(force=True) == made  # the schedule (no actor) is the system


@pytest.mark.usefixtures("acme")
def test_the_api_refuses_a_verification_with_the_services_reason(
    people: dict[str, Any], token_client: Any
) -> None:
    answer = token_client(people["reviewer"]).post("/api/v1/events/verify/")
    assert answer.status_code == 403
    assert "Only administrators can start a verification." in answer.json()["error"]["message"]
    assert not VerificationRun.objects.exists()


# --- waivers --------------------------------------------------------------------------------


def test_waiver_services_refuse_with_the_predicates_reason(
    acme: Any, people: dict[str, Any], change: Any
) -> None:
    admin, security, reviewer = people["admin"], people["security"], people["reviewer"]
    cases = [
        (lambda: _grant(acme, security, reviewer, change=change), permissions.GRANT_REASON),
    ]
    waiver = _grant(acme, admin, reviewer, change=change)
    cases += [
        (
            lambda: waivers.waiver_renew(
                waiver=waiver, actor=security, expires_at=timezone.now() + timedelta(days=3)
            ),
            permissions.GRANT_REASON,
        ),
        (
            lambda: waivers.waiver_revoke(waiver=waiver, actor=reviewer, reason="no"),
            "Only an administrator or a security officer can revoke a waiver.",
        ),
        (
            lambda: waivers.waiver_countersign(waiver=waiver, actor=admin),
            "Only a security officer of the tenant can countersign.",
        ),
    ]
    before = Event.objects.count()
    for call, reason in cases:
        with pytest.raises(Forbidden) as refused:
            call()
        assert refused.value.message == reason
    assert Waiver.objects.count() == 1
    assert Event.objects.count() == before
    waiver.refresh_from_db()
    assert waiver.revoked_at is None
    assert waiver.countersigned_at is None
    # The same predicates, asked by a page: the same answers.
    assert not permissions.can_grant_waiver(security, acme)
    assert permissions.can_grant_waiver(admin, acme, change)
    assert permissions.can_countersign_waiver(security, waiver)
    assert permissions.can_revoke_waiver(security, waiver)
    assert not permissions.can_renew_waiver(security, waiver)


@pytest.mark.usefixtures("acme")
def test_the_change_page_offers_a_waiver_only_to_who_may_grant_it(
    client: Client, people: dict[str, Any], change: Any
) -> None:
    """A failed check's "request a waiver" link: administrators yes, officers no."""
    from reviews import services as reviews
    from reviews.models import CheckRun

    reviews.change_submit(change=change, actor=people["author"])
    run = CheckRun.objects.filter(change=change).first()
    assert run is not None
    CheckRun.objects.filter(pk=run.pk).update(status="failed")
    url = f"/governance/waivers/new/?change={change.reference}"
    client.force_login(people["security"])
    assert url not in client.get(change.get_absolute_url()).content.decode()
    client.force_login(people["admin"])
    assert url in client.get(change.get_absolute_url()).content.decode()


def test_the_api_waiver_says_what_the_caller_may_do(
    acme: Any, people: dict[str, Any], change: Any, token_client: Any
) -> None:
    waiver = _grant(acme, people["admin"], people["reviewer"], change=change)  # a security check

    def allowed(who: str) -> dict[str, bool]:
        answer = token_client(people[who]).get(f"/api/v1/waivers/{waiver.reference}/")
        assert answer.status_code == 200
        return answer.json()["allowed"]

    assert allowed("admin") == {"renew": True, "revoke": True, "countersign": False}
    assert allowed("security") == {"renew": False, "revoke": True, "countersign": True}
    assert allowed("reviewer") == {"renew": False, "revoke": False, "countersign": False}
