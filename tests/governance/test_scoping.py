"""One rule for which tenant a user may see; metrics and verification runs scoped by it."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser

from accounts.models import Tenant
from accounts.selectors import tenant_scoped, tenants_visible_to
from governance.kernel.events import selectors as event_selectors
from governance.kernel.events.models import Event, VerificationRun
from registry import selectors as registry_selectors
from reviews import selectors as review_selectors
from reviews.waivers import selectors as governance_selectors

pytestmark = pytest.mark.django_db


def test_the_one_rule_fails_closed(acme: Tenant, globex: Tenant, make_user: Any, root: Any) -> None:
    member = make_user("m", acme="member")
    gone = make_user("gone", acme="member")
    gone.is_active = False
    gone.save(update_fields=["is_active"])
    everything = Tenant.objects.all()
    assert list(tenant_scoped(everything, user=member, via="pk")) == [acme]
    assert set(tenant_scoped(everything, user=root, via="pk")) == {acme, globex}
    for nobody in (None, AnonymousUser(), gone):
        assert not tenant_scoped(everything, user=nobody, via="pk").exists()
    assert list(tenants_visible_to(member)) == [acme]


@pytest.mark.parametrize(
    "lookup",
    [
        registry_selectors.artifact_by_path,
        registry_selectors.version_by_reference,
        review_selectors.change_by_reference,
        governance_selectors.waiver_by_reference,
    ],
)
def test_every_lookup_needs_to_be_told_whose_eyes(lookup: Any) -> None:
    """``visible_to`` has no default: forgetting it is a TypeError, never "no restriction"."""
    param = inspect.signature(lookup).parameters["visible_to"]
    assert param.kind is inspect.Parameter.KEYWORD_ONLY
    assert param.default is inspect.Parameter.empty


def test_a_tenant_administrator_sees_metrics_of_their_tenants_only(
    client: Any,
    acme: Tenant,
    globex: Tenant,
    make_user: Any,
    root: Any,
    django_assert_num_queries: Any,
) -> None:
    make_user("g", globex=["member", "reviewer"])  # globex activity
    boss = make_user("boss", acme=["member", "administrator"], globex="member")
    client.force_login(boss)
    with django_assert_num_queries(14):
        html = client.get("/governance/metrics/").content.decode()
    assert "<td>acme</td>" in html
    assert "globex" not in html
    assert "(platform)" not in html  # a member there, not its admin
    assert "for the tenants you administer only" in html
    acme_events = Event.objects.filter(tenant=acme).count()
    assert f'<th scope="row">Events in the log</th><td>{acme_events}</td>' in html
    client.force_login(root)
    html = client.get("/governance/metrics/").content.decode()
    assert "<td>acme</td>" in html
    assert "<td>globex</td>" in html
    assert f"<td>{Event.objects.count()}</td>" in html
    client.force_login(make_user("officer", acme=["member", "security_officer"]))
    assert client.get("/governance/metrics/").status_code == 404


@pytest.mark.usefixtures("acme", "globex")
def test_a_verification_run_is_read_by_who_started_it_and_platform_administrators(
    client: Any, make_user: Any, root: Any, token_client: Any
) -> None:
    acme_boss = make_user("acme-boss", acme=["member", "administrator"])
    globex_boss = make_user("globex-boss", globex=["member", "administrator"])
    theirs = VerificationRun.objects.create(total=3, requested_by=globex_boss, reason="theirs")
    mine = VerificationRun.objects.create(total=3, requested_by=acme_boss, reason="mine")
    api = token_client(acme_boss)
    listed = api.get("/api/v1/verifications/").json()["results"]
    assert [r["id"] for r in listed] == [str(mine.pk)]
    assert api.get(f"/api/v1/verifications/{theirs.pk}/").status_code == 404
    assert api.get(f"/api/v1/verifications/{mine.pk}/").json()["reason"] == "mine"
    assert api.get("/api/v1/events/verify/").json()["id"] == str(mine.pk)
    client.force_login(acme_boss)
    assert client.get(theirs.get_absolute_url()).status_code == 404
    assert client.get(mine.get_absolute_url()).status_code == 200
    assert "globex-boss" not in client.get("/governance/").content.decode()
    everyone = token_client(root).get("/api/v1/verifications/").json()["results"]
    assert {r["id"] for r in everyone} == {str(mine.pk), str(theirs.pk)}
    client.force_login(root)
    assert client.get(theirs.get_absolute_url()).status_code == 200
    member = token_client(make_user("m", acme="member"))
    assert member.get("/api/v1/verifications/").json()["results"] == []
    assert member.get("/api/v1/events/verify/").status_code == 404
    assert event_selectors.latest_verification() == mine  # the platform-wide view is unchanged
