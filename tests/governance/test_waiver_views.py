"""Waiver pages: the list by state, a waiver's page, and granting, renewing, revoking, countersigning."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from reviews.choices import CheckKind
from reviews.waivers import services
from reviews.waivers.models import Waiver
from tests.reviews.conftest import make_artifact, open_change, people, prompt, prompt_v1
from tests.reviews.test_views import PASSWORD

__all__ = ["open_change", "people", "prompt", "prompt_v1"]  # fixtures used here

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


def grant(tenant: Any, actor: Any, owner: Any, **kw: Any) -> Waiver:
    kw.setdefault("check_kind", CheckKind.OFFLINE_EVALUATION)
    kw.setdefault("justification", "The safety drop is a scoring artefact.")
    kw.setdefault("mitigation", "Human review of 5% of replies.")
    kw.setdefault("expires_at", timezone.now() + 20 * DAY)
    return services.waiver_grant(tenant=tenant, actor=actor, owner=owner, **kw)


def local_input(moment: Any) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def references_in(html: str) -> list[str]:
    return re.findall(r'<tr data-reference="(WV-\d{4}-\d{4})">', html)


def group_order(html: str) -> list[str]:
    return re.findall(r'<section aria-labelledby="state-(\w+)"', html)


@pytest.fixture
def change(open_change: Any, prompt_v1: Any) -> Any:
    return open_change(prompt_v1)


@pytest.fixture
def waivers(acme: Any, people: dict[str, Any], prompt: Any, change: Any) -> dict[str, Waiver]:
    """One waiver in each state, granted by acme's administrator."""
    admin, owner = people["admin"], people["reviewer"]
    made = {
        "active": grant(acme, admin, owner, change=change, expires_at=timezone.now() + 30 * DAY),
        "expiring_soon": grant(
            acme, admin, owner, artifacts=[prompt], expires_at=timezone.now() + 3 * DAY
        ),
        "pending": grant(acme, admin, owner, change=change, check_kind=CheckKind.POLICY),
        "revoked": grant(acme, admin, owner, change=change, check_kind=CheckKind.PACK_VERIFICATION),
        "expired": grant(acme, admin, owner, change=change, check_kind=CheckKind.MODEL_PINS),
    }
    services.waiver_revoke(waiver=made["revoked"], actor=admin, reason="Fixed upstream.")
    # No service grants a waiver in the past; move this one's dates back to test expiry.
    Waiver.objects.filter(pk=made["expired"].pk).update(
        starts_at=timezone.now() - 10 * DAY, expires_at=timezone.now() - DAY
    )
    return made


# --- the list -------------------------------------------------------------------------------


def test_the_list_groups_waivers_by_state_expiring_soon_first(
    client: Client, people: dict[str, Any], waivers: dict[str, Waiver]
) -> None:
    client.force_login(people["reviewer"])
    html = client.get("/governance/waivers/").content.decode()
    assert group_order(html) == ["expiring_soon", "pending", "active", "expired", "revoked"]
    assert references_in(html) == [
        waivers[s].reference for s in ("expiring_soon", "pending", "active", "expired", "revoked")
    ]
    assert 'href="/governance/waivers/"' in html
    assert "Waivers</a>" in html  # the nav link
    assert "prompt/acme/qualify-lead" in html  # an artifact-scoped waiver names its artifacts
    assert waivers["active"].change is not None
    assert waivers["active"].change.reference in html


def test_the_list_filters_by_state_tenant_and_check(
    client: Client, people: dict[str, Any], waivers: dict[str, Waiver]
) -> None:
    client.force_login(people["reviewer"])
    only_active = client.get("/governance/waivers/?state=active").content.decode()
    assert references_in(only_active) == [waivers["active"].reference]
    two = client.get("/governance/waivers/?state=expired&state=revoked").content.decode()
    assert references_in(two) == [waivers["expired"].reference, waivers["revoked"].reference]
    by_check = client.get("/governance/waivers/?check=policy").content.decode()
    assert references_in(by_check) == [waivers["pending"].reference]
    by_tenant = client.get(
        "/governance/waivers/?tenant=acme&check=pack_verification"
    ).content.decode()
    assert references_in(by_tenant) == [waivers["revoked"].reference]
    bad = client.get("/governance/waivers/?state=sleeping&tenant=globex")
    assert bad.status_code == 400
    text = bad.content.decode()
    assert "Select a valid choice. sleeping is not one of the available choices." in text
    assert references_in(text) == []


@pytest.mark.usefixtures("globex")
def test_an_outsider_sees_no_other_tenants_waivers(
    client: Client, make_user: Any, waivers: dict[str, Waiver]
) -> None:
    outsider = make_user("outsider", globex=["member", "administrator", "security_officer"])
    client.force_login(outsider)
    assert references_in(client.get("/governance/waivers/").content.decode()) == []
    assert client.get("/governance/waivers/?tenant=acme").status_code == 400  # not a choice
    ref = waivers["pending"].reference
    assert client.get(f"/governance/waivers/{ref}/").status_code == 404
    assert client.get(f"/governance/waivers/{ref}/renew/").status_code == 404
    assert client.post(f"/governance/waivers/{ref}/revoke/", {"reason": "x"}).status_code == 404
    assert client.post(f"/governance/waivers/{ref}/countersign/").status_code == 404
    assert Waiver.objects.get(pk=waivers["pending"].pk).revoked_at is None


def _list_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get("/governance/waivers/").status_code == 200
    return len(ctx.captured_queries)


def test_the_list_query_count_does_not_grow_with_its_rows(
    client: Client,
    acme: Any,
    people: dict[str, Any],
    change: Any,
    django_assert_num_queries: Any,
) -> None:
    def add(n: int) -> None:
        for i in range(n):
            artifact = make_artifact(acme, "prompt", f"scoped-{Waiver.objects.count()}-{i}")
            grant(acme, people["admin"], people["reviewer"], artifacts=[artifact])
            grant(acme, people["admin"], people["reviewer"], change=change)

    client.force_login(people["reviewer"])
    add(2)
    baseline = _list_queries(client)
    add(4)
    assert Waiver.objects.count() == 12
    with django_assert_num_queries(baseline):
        html = client.get("/governance/waivers/").content.decode()
    assert len(references_in(html)) == 12


# --- a waiver's page ------------------------------------------------------------------------


def test_the_page_shows_scope_terms_state_people_history_and_covered_changes(
    client: Client, people: dict[str, Any], waivers: dict[str, Waiver], change: Any
) -> None:
    waiver = waivers["revoked"]
    client.force_login(people["reviewer"])
    html = client.get(f"/governance/waivers/{waiver.reference}/").content.decode()
    assert 'data-state="revoked">Revoked</span>' in html
    assert "Pack verification" in html
    assert f'<a href="/reviews/changes/{change.reference}/">{change.reference}</a> only' in html
    assert "The safety drop is a scoring artefact." in html
    assert "Human review of 5% of replies." in html
    assert "Granted by</dt><dd>admin" in html
    assert re.search(r'id="revoked">admin, <time[^>]*>[^<]*</time>: Fixed upstream.', html)
    seqs = list(
        Event.objects.filter(subject_type="governance.waiver", subject_id=str(waiver.pk))
        .order_by("seq")
        .values_list("seq", flat=True)
    )
    assert len(seqs) == 2  # granted, revoked
    for seq in seqs:
        assert f'<a href="/governance/events/{seq}/">{seq}</a>' in html
    assert "Waiver granted" in html
    assert "Waiver revoked" in html
    covered = html.split('id="covered"')[1]
    assert change.reference in covered
    assert change.title in covered


def test_an_artifact_scoped_waiver_covers_changes_of_only_those_artifacts(
    client: Client,
    acme: Any,
    people: dict[str, Any],
    prompt: Any,
    prompt_v1: Any,
    open_change: Any,
) -> None:
    from tests.reviews.conftest import publish

    inside = open_change(prompt_v1)
    other = make_artifact(acme, "prompt", "other-prompt")
    outside = open_change(prompt_v1, publish(other, impact="major", text="Hi {{ customer }}."))
    waiver = grant(acme, people["admin"], people["reviewer"], artifacts=[prompt])
    client.force_login(people["reviewer"])
    covered = (
        client.get(f"/governance/waivers/{waiver.reference}/")
        .content.decode()
        .split('id="covered"')[1]
    )
    assert inside.reference in covered
    assert outside.reference not in covered


def test_actions_are_offered_only_to_those_allowed(
    client: Client, people: dict[str, Any], waivers: dict[str, Waiver]
) -> None:
    pending = waivers["pending"].reference

    def buttons(who: str, ref: str) -> set[str]:
        client.force_login(people[who])
        html = client.get(f"/governance/waivers/{ref}/").content.decode()
        return {b for b in ("countersign", "renew", "revoke") if f'id="{b}"' in html}

    assert buttons("reviewer", pending) == set()
    assert buttons("author", pending) == set()
    assert buttons("admin", pending) == {"renew", "revoke"}
    assert buttons("security", pending) == {"countersign", "revoke"}
    assert buttons("security", waivers["active"].reference) == {"revoke"}
    assert buttons("admin", waivers["revoked"].reference) == set()
    assert buttons("admin", waivers["expired"].reference) == {"renew"}


# --- granting -------------------------------------------------------------------------------


def _form(people: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    data = {
        "tenant": "acme",
        "check_kind": CheckKind.OFFLINE_EVALUATION,
        "metric": "",
        "change": "",
        "artifacts": "prompt/acme/qualify-lead",
        "owner": people["reviewer"].username,
        "justification": "The eval set changed.",
        "mitigation": "Spot checks daily.",
        "advisory_links": "https://wiki.example/eval\nhttps://wiki.example/run",
        "expires_at": local_input(timezone.now() + 10 * DAY),
    }
    data.update(overrides)
    return data


def test_grant_from_a_change_page_prefills_and_grants(
    client: Client, people: dict[str, Any], change: Any, prompt: Any
) -> None:
    client.force_login(people["admin"])
    page = client.get(f"/governance/waivers/new/?change={change.reference}&check=policy")
    html = page.content.decode()
    assert page.status_code == 200
    assert f'value="{change.reference}"' in html
    assert '<option value="policy" selected>' in html
    assert '<option value="acme" selected>' in html
    assert 'type="datetime-local"' in html
    assert "csrfmiddlewaretoken" in html
    response = client.post(
        "/governance/waivers/new/",
        _form(people, change=change.reference, artifacts="", check_kind="policy"),
    )
    waiver = Waiver.objects.get()
    assert response.status_code == 302
    assert response["Location"] == waiver.get_absolute_url()
    assert waiver.change == change
    assert waiver.check_kind == "policy"
    assert waiver.needs_security
    assert waiver.granted_by == people["admin"]
    assert waiver.owner == people["reviewer"]
    assert waiver.advisory_links == ["https://wiki.example/eval", "https://wiki.example/run"]
    assert Event.objects.filter(kind=EventKind.WAIVER_GRANTED, subject_id=str(waiver.pk)).exists()
    shown = client.get(response["Location"]).content.decode()
    assert "countersigns it" in shown
    assert 'data-state="pending"' in shown
    assert f"{change.reference}</a> only, revision {change.revision}</dd>" in shown


def test_grant_scoped_to_artifacts(client: Client, people: dict[str, Any], prompt: Any) -> None:
    client.force_login(people["admin"])
    response = client.post("/governance/waivers/new/", _form(people))
    assert response.status_code == 302
    waiver = Waiver.objects.get()
    assert list(waiver.artifacts.all()) == [prompt]
    assert waiver.change is None


@pytest.mark.usefixtures("globex")
@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"expires_at": "yesterday"}, "expires_at", "Enter a valid date/time."),
        ({"expires_at": "past"}, "expires_at", "The expiry must be in the future."),
        ({"expires_at": "far"}, "expires_at", "A waiver runs at most"),
        ({"artifacts": ""}, "change", "Scope the waiver to one change or to one or more artifacts"),
        ({"change": "CR-2026-9999", "artifacts": ""}, "change", "No change request CR-2026-9999"),
        ({"artifacts": "prompt/acme/nope"}, "artifacts", "No artifact prompt/acme/nope"),
        (
            {"artifacts": "qualify-lead@1.0.0"},
            "artifacts",
            "name each artifact as class/tenant/slug",
        ),
        ({"owner": "nobody"}, "owner", "nobody is not an active member of acme"),
        ({"metric": "safety"}, "metric", "Only a change-gates waiver can name a metric."),
        ({"justification": "   "}, "justification", "This field is required."),
        ({"advisory_links": "javascript:alert(1)"}, "advisory_links", "is not an http(s) URL"),
        ({"check_kind": "vibes"}, "check_kind", "Select a valid choice."),
        (
            {"check_kind": "rules_lint"},
            "check_kind",
            "Rules lint does not apply to prompt/acme/qualify-lead",
        ),
        ({"tenant": "globex"}, "tenant", "Select a valid choice."),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(
    client: Client,
    people: dict[str, Any],
    prompt: Any,
    overrides: dict[str, str],
    field: str,
    message: str,
) -> None:
    moments = {
        "past": local_input(timezone.now() - DAY),
        "far": local_input(timezone.now() + 400 * DAY),
    }
    overrides = {k: moments.get(v, v) for k, v in overrides.items()}
    client.force_login(people["admin"])
    before = Event.objects.count()
    response = client.post("/governance/waivers/new/", _form(people, **overrides))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors, errors
    assert any(message in e for e in errors[field]), errors[field]
    assert message.split("'")[0] in response.content.decode().replace("&#x27;", "'")
    assert not Waiver.objects.exists()
    assert Event.objects.count() == before


@pytest.mark.parametrize("who", ["reviewer", "security", "privacy"])
def test_only_an_administrator_may_grant(
    client: Client, people: dict[str, Any], prompt: Any, who: str
) -> None:
    """Officers and reviewers see no form they cannot submit; a forced POST says why (403)."""
    reason = "Only an administrator of the tenant can grant a waiver."
    client.force_login(people[who])
    listing = client.get("/governance/waivers/").content.decode()
    assert 'id="grant-link"' not in listing
    page = client.get("/governance/waivers/new/")
    assert page.status_code == 403
    html = page.content.decode()
    assert 'id="waiver-form"' not in html
    assert f'id="refusal">{reason}</p>' in html
    before = Event.objects.count()
    response = client.post("/governance/waivers/new/", _form(people))
    assert response.status_code == 403
    html = response.content.decode()
    assert f'id="refusal">{reason}</p>' in html  # the service's reason, not a bare 403
    assert 'id="waiver-form"' not in html
    assert "You do not have access to this page." not in html
    assert not Waiver.objects.exists()
    assert Event.objects.count() == before


def test_an_administrator_is_offered_the_form(
    client: Client, people: dict[str, Any], prompt: Any
) -> None:
    client.force_login(people["admin"])
    assert 'id="grant-link"' in client.get("/governance/waivers/").content.decode()
    page = client.get("/governance/waivers/new/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="waiver-form"' in html
    assert 'id="refusal"' not in html


def test_the_author_of_a_change_is_told_why_on_the_form(
    client: Client, acme: Any, people: dict[str, Any], change: Any
) -> None:
    """An administrator who wrote the change sees the form; the service's refusal lands on it."""
    from accounts.services import role_grant

    role_grant(user=people["author"], tenant=acme, role="administrator", actor=None)
    client.force_login(people["author"])
    response = client.post(
        "/governance/waivers/new/", _form(people, change=change.reference, artifacts="")
    )
    assert response.status_code == 403
    assert response.context["form"].non_field_errors() == [
        "The author of a change cannot waive its checks."
    ]
    assert 'id="waiver-form"' in response.content.decode()
    assert not Waiver.objects.exists()


def test_posts_need_a_csrf_token(people: dict[str, Any], prompt: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(people["admin"])
    assert client.post("/governance/waivers/new/", _form(people)).status_code == 403
    assert not Waiver.objects.exists()


# --- renewing, revoking, countersigning -----------------------------------------------------


def test_renewal_is_a_new_linked_waiver(
    client: Client, people: dict[str, Any], waivers: dict[str, Waiver]
) -> None:
    old = waivers["expiring_soon"]
    client.force_login(people["admin"])
    form = client.get(f"/governance/waivers/{old.reference}/renew/").content.decode()
    assert "The safety drop is a scoring artefact." in form  # the terms, restated by default
    expiry = timezone.now() + 40 * DAY
    response = client.post(
        f"/governance/waivers/{old.reference}/renew/",
        {
            "justification": "Still needed while the eval is rebuilt.",
            "mitigation": "Human review continues.",
            "advisory_links": "",
            "expires_at": local_input(expiry),
            "password": PASSWORD,
        },
    )
    new = Waiver.objects.get(renews=old)
    assert response.status_code == 302
    assert response["Location"] == new.get_absolute_url()
    assert new.justification == "Still needed while the eval is rebuilt."
    assert list(new.artifacts.all()) == list(old.artifacts.all())
    assert abs((new.expires_at - expiry).total_seconds()) < 60
    old_page = client.get(old.get_absolute_url()).content.decode()
    assert f'id="renewed-by">{new.reference}</a>' in old_page
    assert 'id="renew"' not in old_page  # renew the newest one instead
    new_page = client.get(new.get_absolute_url()).content.decode()
    assert f'id="renewed-from">{old.reference}</a>' in new_page
    renewed = Event.objects.get(kind=EventKind.WAIVER_RENEWED)
    assert f'<a href="/governance/events/{renewed.seq}/">{renewed.seq}</a>' in old_page


def test_renewal_errors_name_the_field_or_say_why(
    client: Client, people: dict[str, Any], waivers: dict[str, Waiver]
) -> None:
    client.force_login(people["admin"])
    active = waivers["active"]
    bad = client.post(
        f"/governance/waivers/{active.reference}/renew/",
        {
            "justification": "x",
            "mitigation": "y",
            "expires_at": local_input(timezone.now() - DAY),
            "password": PASSWORD,
        },
    )
    assert bad.status_code == 400
    assert bad.context["form"].errors["expires_at"] == ["The expiry must be in the future."]
    revoked = waivers["revoked"]
    conflict = client.post(
        f"/governance/waivers/{revoked.reference}/renew/",
        {
            "justification": "x",
            "mitigation": "y",
            "expires_at": local_input(timezone.now() + DAY),
            "password": PASSWORD,
        },
    )
    assert conflict.status_code == 409
    assert "was revoked; grant a new waiver instead." in conflict.content.decode()
    assert not Waiver.objects.filter(renews__in=[active, revoked]).exists()
    client.force_login(people["reviewer"])
    assert client.get(f"/governance/waivers/{active.reference}/renew/").status_code == 403
    assert (
        client.post(
            f"/governance/waivers/{active.reference}/renew/",
            {
                "justification": "x",
                "mitigation": "y",
                "expires_at": local_input(timezone.now() + DAY),
            },
        ).status_code
        == 403
    )
    assert not Waiver.objects.filter(renews=active).exists()


def test_revoking_needs_a_reason(
    client: Client, people: dict[str, Any], waivers: dict[str, Waiver]
) -> None:
    waiver = waivers["active"]
    client.force_login(people["security"])
    revoke_url = f"/governance/waivers/{waiver.reference}/revoke/"
    empty = client.post(revoke_url, {"reason": "  ", "password": PASSWORD})
    assert empty.status_code == 400
    assert empty.context["form"].errors["reason"] == ["This field is required."]
    waiver.refresh_from_db()
    assert waiver.revoked_at is None
    done = client.post(revoke_url, {"reason": "Fixed.", "password": PASSWORD})
    assert done.status_code == 302
    waiver.refresh_from_db()
    assert waiver.revoked_by == people["security"]
    assert waiver.revoke_reason == "Fixed."
    again = client.post(revoke_url, {"reason": "Again.", "password": PASSWORD})
    assert again.status_code == 409
    assert "is already revoked" in again.content.decode()
    client.force_login(people["reviewer"])
    other = waivers["pending"]
    assert client.get(f"/governance/waivers/{other.reference}/revoke/").status_code == 403
    assert (
        client.post(f"/governance/waivers/{other.reference}/revoke/", {"reason": "no"}).status_code
        == 403
    )
    other.refresh_from_db()
    assert other.revoked_at is None


def test_countersigning(client: Client, people: dict[str, Any], waivers: dict[str, Waiver]) -> None:
    waiver = waivers["pending"]
    url = f"/governance/waivers/{waiver.reference}/countersign/"
    client.force_login(people["admin"])  # the grantor
    assert client.post(url).status_code == 403
    assert client.get(url)["Location"] == f"/governance/waivers/{waiver.reference}/"
    client.force_login(people["security"])
    response = client.post(url, {"password": PASSWORD})
    assert response.status_code == 302
    waiver.refresh_from_db()
    assert waiver.countersigned_by == people["security"]
    page = client.get(waiver.get_absolute_url()).content.decode()
    assert 'data-state="active"' in page
    assert 'id="countersigned">security' in page
    again = client.post(url, {"password": PASSWORD})
    assert again.status_code == 409
    assert "was already countersigned by security" in again.content.decode()
    assert Event.objects.filter(kind=EventKind.WAIVER_COUNTERSIGNED).count() == 1


def test_revoke_renew_and_countersign_ask_for_the_password(
    client: Client, people: dict[str, Any], waivers: dict[str, Waiver]
) -> None:
    """Deliberate acts, like sign-off and promotion: the form asks for the password; missing
    (400) or wrong (403), the form says so on its password field and nothing changes."""
    from governance.kernel.reauth import PASSWORD_MISSING, PASSWORD_WRONG

    pending, active = waivers["pending"], waivers["active"]
    events = Event.objects.count()
    client.force_login(people["security"])
    page = client.get(pending.get_absolute_url()).content.decode()
    countersign_form = page.split('id="countersign-form"')[1].split("</form>")[0]
    assert 'type="password"' in countersign_form
    url = f"/governance/waivers/{pending.reference}/countersign/"
    missing = client.post(url)
    assert missing.status_code == 400
    shown = missing.content.decode().split('id="countersign-form"')[1].split("</form>")[0]
    assert PASSWORD_MISSING in shown  # atop the form the person used
    wrong = client.post(url, {"password": "not-it"})
    assert wrong.status_code == 403
    assert PASSWORD_WRONG in wrong.content.decode().split('id="countersign-form"')[1]
    pending.refresh_from_db()
    assert pending.countersigned_at is None

    revoke_url = f"/governance/waivers/{active.reference}/revoke/"
    assert 'type="password"' in client.get(revoke_url).content.decode()
    missing = client.post(revoke_url, {"reason": "Fixed."})
    assert missing.status_code == 400
    assert missing.context["form"].errors["password"] == [PASSWORD_MISSING]
    wrong = client.post(revoke_url, {"reason": "Fixed.", "password": "not-it"})
    assert wrong.status_code == 403
    assert wrong.context["form"].errors["password"] == [PASSWORD_WRONG]
    assert 'id="waiver-revoke-form"' in wrong.content.decode()  # the form stays, with its error
    active.refresh_from_db()
    assert active.revoked_at is None
    assert Event.objects.count() == events

    assert client.post(url, {"password": PASSWORD}).status_code == 302
    pending.refresh_from_db()
    assert pending.countersigned_by == people["security"]
    # Confirmed a moment ago: not asked again.
    assert 'type="password"' not in client.get(revoke_url).content.decode()
    assert client.post(revoke_url, {"reason": "Fixed."}).status_code == 302
    active.refresh_from_db()
    assert active.revoked_by == people["security"]

    old = waivers["expiring_soon"]
    client.force_login(people["admin"])
    renew_url = f"/governance/waivers/{old.reference}/renew/"
    terms = {
        "justification": "Still needed.",
        "mitigation": "Human review continues.",
        "expires_at": local_input(timezone.now() + 10 * DAY),
    }
    form = client.get(renew_url).content.decode()
    assert 'type="password"' in form.split('id="waiver-renew-form"')[1]
    missing = client.post(renew_url, terms)
    assert missing.status_code == 400
    assert missing.context["form"].errors["password"] == [PASSWORD_MISSING]
    wrong = client.post(renew_url, {**terms, "password": "not-it"})
    assert wrong.status_code == 403
    assert wrong.context["form"].errors["password"] == [PASSWORD_WRONG]
    assert wrong.context["form"]["justification"].value() == "Still needed."  # kept
    assert not Waiver.objects.filter(renews=old).exists()
    assert client.post(renew_url, {**terms, "password": PASSWORD}).status_code == 302
    assert Waiver.objects.get(renews=old).justification == "Still needed."


def test_who_may_not_act_is_told_so_before_any_password(
    client: Client, people: dict[str, Any], waivers: dict[str, Waiver]
) -> None:
    pending = waivers["pending"]
    client.force_login(people["reviewer"])
    revoke = client.post(
        f"/governance/waivers/{pending.reference}/revoke/", {"reason": "no", "password": "x"}
    )
    assert revoke.status_code == 403
    html = revoke.content.decode()
    assert "Only an administrator or a security officer can revoke a waiver." in html
    assert "not your password" not in html
    client.force_login(people["admin"])  # the grantor: may not countersign
    countersign = client.post(
        f"/governance/waivers/{pending.reference}/countersign/", {"password": "x"}
    )
    assert countersign.status_code == 403
    html = countersign.content.decode()
    assert "Only a security officer of the tenant can countersign." in html
    assert "not your password" not in html
    assert 'id="countersign-form"' not in html
    pending.refresh_from_db()
    assert pending.revoked_at is None
    assert pending.countersigned_at is None


def test_pages_need_a_login(client: Client, waivers: dict[str, Waiver]) -> None:
    for url in ("/governance/waivers/", f"/governance/waivers/{waivers['active'].reference}/"):
        response = client.get(url)
        assert response.status_code == 302
        assert "/login/" in response["Location"]


def test_refused_renew_revoke_and_countersign_say_why(
    client: Client, people: dict[str, Any], waivers: dict[str, Waiver]
) -> None:
    """No form for someone who may not act; a forced POST shows the service's reason (403)."""
    active, pending = waivers["active"], waivers["pending"]
    client.force_login(people["security"])  # may revoke and countersign, never renew
    renew = client.get(f"/governance/waivers/{active.reference}/renew/")
    assert renew.status_code == 403
    html = renew.content.decode()
    assert 'id="waiver-renew-form"' not in html
    assert 'id="refusal">Only an administrator of the tenant can grant a waiver.</p>' in html
    forced = client.post(
        f"/governance/waivers/{active.reference}/renew/",
        {"justification": "x", "mitigation": "y", "expires_at": local_input(timezone.now() + DAY)},
    )
    assert forced.status_code == 403
    assert "Only an administrator of the tenant can grant a waiver." in forced.content.decode()
    client.force_login(people["reviewer"])
    revoke = client.post(f"/governance/waivers/{pending.reference}/revoke/", {"reason": "no"})
    assert revoke.status_code == 403
    html = revoke.content.decode()
    assert 'id="waiver-revoke-form"' not in html
    assert "Only an administrator or a security officer can revoke a waiver." in html
    client.force_login(people["admin"])  # the grantor, and no security officer
    countersign = client.post(f"/governance/waivers/{pending.reference}/countersign/")
    assert countersign.status_code == 403
    html = countersign.content.decode()
    assert "Only a security officer of the tenant can countersign." in html
    assert f"{pending.reference}</span> waives" in html  # the waiver's page, not a bare 403
    assert not Waiver.objects.filter(renews=active).exists()
    pending.refresh_from_db()
    assert pending.revoked_at is None
    assert pending.countersigned_at is None


def test_the_tenant_list_offers_only_tenants_where_the_person_may_grant(
    client: Client, globex: Any, make_user: Any, people: dict[str, Any], prompt: Any
) -> None:
    """An administrator of acme who is only a reviewer in globex is offered acme alone."""
    from accounts import services as accounts

    admin = people["admin"]
    accounts.role_grant(user=admin, role="reviewer", tenant=globex, actor=None)
    accounts.role_grant(user=make_user("gadmin"), role="administrator", tenant=globex, actor=None)
    client.force_login(admin)
    page = client.get("/governance/waivers/new/")
    assert page.status_code == 200
    assert list(page.context["form"].fields["tenant"].choices) == [("acme", "acme")]
    html = page.content.decode()
    assert '<option value="acme"' in html
    assert '<option value="globex"' not in html
    before = Event.objects.count()
    response = client.post("/governance/waivers/new/", _form(people, tenant="globex"))
    assert response.status_code == 400
    assert "Select a valid choice." in response.context["form"].errors["tenant"][0]
    assert not Waiver.objects.exists()
    assert Event.objects.count() == before
