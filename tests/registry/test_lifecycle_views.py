"""Lifecycle pages: deprecated, removed and retired versions say so; administrators deprecate,
retire and hand artifacts on from the browser, through the services, with errors on the field."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from governance.kernel import reauth
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from registry import services
from registry.models import Artifact, Deprecation, Retirement, Version, VersionUsage
from tests.registry.conftest import publish

pytestmark = pytest.mark.django_db

V1 = "Qualify {{ customer }}."
V2 = "Qualify {{ customer }} politely."
BASE = "/registry/prompt/acme/qualify-lead/"


@pytest.fixture
def admin(make_user: Any, acme: Any) -> Any:
    return make_user("admin", acme=["member", "administrator"])


@pytest.fixture
def versions(prompt: Artifact) -> tuple[Version, Version]:
    return publish(prompt, V1, "major"), publish(prompt, V2, "minor")


def signed_in(user: Any, *, confirmed: bool = True) -> Client:
    """A signed-in browser; ``confirmed``: it confirmed the password a moment ago (the
    deliberate acts below then do not ask again; test_deliberate_acts_need_the_password)."""
    client = Client()
    client.force_login(user)
    if confirmed:
        session = client.session
        session[reauth.SESSION_KEY] = {"user": str(user.pk), "at": time.time()}
        session.save()
    return client


def page(client: Client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def field_errors(html: str, name: str) -> list[str]:
    """The error messages shown next to the form field ``name``."""
    match = re.search(rf'name="{name}"[^<]*(?:</textarea>|</select>)?(.*?)</p>', html, re.S)
    assert match, f"no field {name}"
    return re.findall(r'class="field-error"[^>]*>([^<]*)<', match.group(1))


def deprecate(admin: Any, old: Version, new: Version, days: int = 30, **extra: str) -> Deprecation:
    return services.version_deprecate(
        version=old,
        replacement=new,
        reason=extra.get("reason", "Politer wording."),
        remove_after_days=days,
        actor=admin,
        override_reason=extra.get("override_reason", ""),
    )


# --- what the pages say -------------------------------------------------------------------


def test_a_deprecated_version_says_so_with_its_replacement_and_removal_date(
    admin: Any, author: Any, versions: tuple[Version, Version]
) -> None:
    v1, v2 = versions
    deprecation = deprecate(admin, v1, v2, days=30)
    html = page(signed_in(author), v1.get_absolute_url())
    banner = html.split('id="deprecation"')[1].split("</section>")[0]
    assert f'Deprecated on <time datetime="{deprecation.deprecated_at.isoformat()}' in banner
    assert f'replaced by <a href="{v2.get_absolute_url()}">{v2.path}</a>' in banner
    assert (
        f'removed from resolution after <time datetime="{deprecation.remove_after.isoformat()}"'
        in banner
    )
    assert deprecation.remove_after.strftime("%Y-%m-%d") in banner
    assert "Politer wording." in banner
    assert "admin" in banner
    assert "No usage reported yet" in banner
    # A deprecated version is no longer offered for promotion.
    assert "Propose for promotion" not in html

    history = page(signed_in(author), BASE).split('id="history-heading"')[1]
    row = history.split(f'href="{v1.get_absolute_url()}"')[1].split("</tr>")[0]
    assert "lifecycle-deprecated" in row
    assert f">{v2.version}</a>" in row
    assert (
        "lifecycle-deprecated"
        not in history.split(f'href="{v2.get_absolute_url()}"')[1].split("</tr>")[0]
    )


def test_usage_is_shown_beside_the_deprecation(
    admin: Any, author: Any, versions: tuple[Version, Version]
) -> None:
    v1, v2 = versions
    deprecate(admin, v1, v2)
    VersionUsage.objects.create(version=v1, consumer="billing-service", requests=1234)
    VersionUsage.objects.create(version=v1, consumer="tenant:acme-eu", requests=7)
    html = page(signed_in(author), v1.get_absolute_url())
    usage = html.split('id="usage"')[1].split("</table>")[0]
    assert "billing-service" in usage
    assert "1234" in usage
    assert "tenant:acme-eu" in usage
    assert "No usage reported yet" not in html


def test_a_removed_version_says_when_it_was_removed(
    admin: Any, author: Any, versions: tuple[Version, Version]
) -> None:
    v1, v2 = versions
    deprecation = deprecate(admin, v1, v2, days=7)
    later = deprecation.remove_after + timedelta(hours=1)
    assert [d.pk for d in services.deprecations_remove_due(now=later)] == [v1.pk]
    html = page(signed_in(author), v1.get_absolute_url())
    banner = html.split('id="deprecation"')[1].split("</section>")[0]
    assert f'Removed from resolution on <time datetime="{later.isoformat()}">' in banner
    assert v2.path in banner
    history = page(signed_in(author), BASE)
    assert "lifecycle-removed" in history


def test_a_retired_version_says_it_is_simulation_only_and_how_long_evidence_stays(
    admin: Any, author: Any, versions: tuple[Version, Version]
) -> None:
    v1, _ = versions
    retirement = services.version_retire(version=v1, rationale="Below its gates.", actor=admin)
    html = page(signed_in(author), v1.get_absolute_url())
    banner = html.split('id="retirement"')[1].split("</section>")[0]
    assert "Retired (simulation-only)" in banner
    assert "Below its gates." in banner
    assert f'kept until <time datetime="{retirement.retain_until.isoformat()}">' in banner
    assert "lifecycle-retired" in page(signed_in(author), BASE)


def test_artifact_page_queries_do_not_grow_with_deprecated_versions(
    admin: Any, author: Any, prompt: Artifact, django_assert_max_num_queries: Any
) -> None:
    made = [publish(prompt, V1, "major")]
    for i in range(3):
        made.append(publish(prompt, f"{V1} v{i}", "patch"))
    deprecate(admin, made[0], made[-1])
    client = signed_in(admin)
    client.get(BASE)
    with django_assert_max_num_queries(60) as few:
        client.get(BASE)
    for i in range(12):
        made.append(publish(prompt, f"{V2} v{i}", "patch"))
    for old in made[1:8]:
        deprecate(admin, old, made[-1])
    for old in made[8:12]:
        services.version_retire(version=old, rationale="superseded", actor=admin)
    with django_assert_max_num_queries(len(few.captured_queries)):
        html = page(client, BASE)
    assert html.count("lifecycle-deprecated") == 8
    assert html.count("lifecycle-retired") == 4


# --- who sees the forms -------------------------------------------------------------------


def test_only_administrators_see_the_lifecycle_forms(
    admin: Any, author: Any, versions: tuple[Version, Version], make_user: Any
) -> None:
    v1, _ = versions
    html = page(signed_in(admin), v1.get_absolute_url())
    assert 'id="deprecate"' in html
    assert 'id="retire"' in html
    # The replacement is chosen among the artifact's other versions.
    select = html.split('name="replacement"')[1].split("</select>")[0]
    assert ">1.1.0<" in select
    assert ">1.0.0<" not in select
    # No override field until the service refused for dependents.
    assert 'name="override_reason"' not in html

    member = signed_in(make_user("bob", acme="member"))
    html = page(member, v1.get_absolute_url())
    assert 'id="deprecate"' not in html
    assert 'id="retire"' not in html
    assert 'id="lifecycle"' not in html
    assert 'id="change-owner"' not in page(member, BASE)
    assert 'id="change-owner"' in page(signed_in(admin), BASE)
    # The owner (author, who created it) may hand it on, as the service allows.
    assert 'id="change-owner"' in page(signed_in(author), BASE)


def test_the_active_version_offers_no_deprecation(
    admin: Any, prompt: Artifact, versions: tuple[Version, Version]
) -> None:
    v1, v2 = versions
    Artifact.objects.filter(pk=prompt.pk).update(active_version=v1)
    client = signed_in(admin)
    html = page(client, v1.get_absolute_url())
    assert 'id="deprecate"' not in html
    assert "This is the active version" in html
    # Posting anyway: the service refuses, the page says why, nothing is written.
    response = client.post(
        f"{BASE}v/1.0.0/deprecate/",
        {"replacement": v2.version, "reason": "x", "remove_after": 30},
    )
    assert response.status_code == 409
    assert "is the active version; promote its replacement first" in response.content.decode()
    assert not Deprecation.objects.exists()


@pytest.mark.usefixtures("author")
def test_members_cannot_post_lifecycle_actions(
    versions: tuple[Version, Version], make_user: Any, globex: Any
) -> None:
    _, v2 = versions
    client = signed_in(make_user("bob", acme="member"))
    data = {"replacement": v2.version, "reason": "x", "remove_after": 30}
    assert client.post(f"{BASE}v/1.0.0/deprecate/", data).status_code == 403
    assert client.post(f"{BASE}v/1.0.0/retire/", {"rationale": "x"}).status_code == 403
    response = client.post(f"{BASE}owner/", {"owner": "bob", "reason": "x"})
    assert response.status_code == 403
    stranger = signed_in(make_user("stranger", globex=["member", "administrator"]))
    assert stranger.post(f"{BASE}v/1.0.0/deprecate/", data).status_code == 404
    assert not Deprecation.objects.exists()
    assert not Retirement.objects.exists()
    assert client.get(f"{BASE}v/1.0.0/deprecate/")["Location"] == f"{BASE}v/1.0.0/"


# --- deprecating --------------------------------------------------------------------------


def test_deprecate_from_the_version_page(admin: Any, versions: tuple[Version, Version]) -> None:
    v1, v2 = versions
    client = signed_in(admin)
    response = client.post(
        f"{BASE}v/1.0.0/deprecate/",
        {"replacement": v2.version, "reason": "Politer wording.", "remove_after": 14},
    )
    assert response.status_code == 302
    assert response["Location"] == v1.get_absolute_url()
    deprecation = Deprecation.objects.get(pk=v1.pk)
    assert deprecation.replacement == v2
    assert deprecation.deprecated_by == admin
    assert (deprecation.remove_after - deprecation.deprecated_at).days == 14
    assert Event.objects.filter(kind=EventKind.VERSION_DEPRECATED).count() == 1
    html = page(client, v1.get_absolute_url())
    assert "Deprecated" in html
    assert 'id="deprecate"' not in html
    assert f"Deprecated {v1.path}: replaced by {v2.path}" in html  # the message


@pytest.mark.parametrize(
    ("data", "field", "text"),
    [
        ({"replacement": "", "reason": "x", "remove_after": 30}, "replacement", "Choose"),
        ({"replacement": "9.9.9", "reason": "x", "remove_after": 30}, "replacement", "valid"),
        ({"replacement": "1.1.0", "reason": "", "remove_after": 30}, "reason", "required"),
        ({"replacement": "1.1.0", "reason": "x", "remove_after": "soon"}, "remove_after", "number"),
        ({"replacement": "1.1.0", "reason": "x", "remove_after": 1}, "remove_after", "at least"),
        ({"replacement": "1.1.0", "reason": "x", "remove_after": 99999}, "remove_after", "at most"),
        ({"replacement": "1.1.0", "reason": "x\x00", "remove_after": 30}, None, None),
        (
            {
                "replacement_reference": "prompt/acme/nothing/1.0.0",
                "reason": "x",
                "remove_after": 30,
            },
            "replacement_reference",
            "No version",
        ),
        (
            {
                "replacement_reference": "prompt/globex/other/1.0.0",
                "reason": "x",
                "remove_after": 30,
            },
            "replacement_reference",
            "in acme",
        ),
        (
            {
                "replacement": "1.1.0",
                "replacement_reference": "qualify-lead@1.1.0",
                "reason": "x",
                "remove_after": 30,
            },
            "replacement_reference",
            "not both",
        ),
    ],
)
def test_deprecate_errors_name_the_field_and_write_nothing(
    admin: Any,
    prompt: Artifact,
    versions: tuple[Version, Version],
    data: dict[str, Any],
    field: str | None,
    text: str | None,
) -> None:
    response = signed_in(admin).post(f"{BASE}v/1.0.0/deprecate/", data)
    assert 400 <= response.status_code < 500
    html = response.content.decode()
    if field is not None and text is not None:
        errors = field_errors(html, field)
        assert errors, errors
        assert text in " ".join(errors), errors
    else:
        assert 'class="field-error"' in html or 'class="form-errors"' in html
    assert 'id="deprecate" open' in html
    assert not Deprecation.objects.exists()
    assert not Event.objects.filter(kind=EventKind.VERSION_DEPRECATED).exists()


def test_a_refusal_for_dependents_offers_the_override(
    admin: Any, acme: Any, prompt_class: Any, versions: tuple[Version, Version]
) -> None:
    v1, v2 = versions
    user = services.artifact_create(
        artifact_class=prompt_class, tenant=acme, slug="uses-it", title="Uses it", actor=admin
    )
    dependent = publish(
        user, "Uses {{ x }}.", "major", dependencies=[f"qualify-lead:1.0.0#{v1.manifest_sha256}"]
    )
    Artifact.objects.filter(pk=user.pk).update(active_version=dependent)
    client = signed_in(admin)
    data = {"replacement": v2.version, "reason": "Politer.", "remove_after": 30}
    response = client.post(f"{BASE}v/1.0.0/deprecate/", data)
    assert response.status_code == 409
    html = response.content.decode()
    errors = field_errors(html, "override_reason")
    assert errors
    assert dependent.path in errors[0]
    # What was typed is kept.
    assert 'value="30"' in html
    assert "Politer.</textarea>" in html
    assert not Deprecation.objects.exists()

    response = client.post(
        f"{BASE}v/1.0.0/deprecate/", {**data, "override_reason": "The dependent moves next week."}
    )
    assert response.status_code == 302
    deprecation = Deprecation.objects.get(pk=v1.pk)
    assert deprecation.override_reason == "The dependent moves next week."
    assert deprecation.dependents == [dependent.path]
    banner = page(client, v1.get_absolute_url()).split('id="deprecation"')[1]
    assert "The dependent moves next week." in banner
    assert dependent.path in banner


def test_deprecate_with_a_replacement_reference(
    admin: Any, acme: Any, prompt_class: Any, versions: tuple[Version, Version]
) -> None:
    v1, _ = versions
    other = services.artifact_create(
        artifact_class=prompt_class, tenant=acme, slug="qualify-lead-v2", title="New", actor=admin
    )
    successor = publish(other, "New {{ customer }}.", "major")
    response = signed_in(admin).post(
        f"{BASE}v/1.0.0/deprecate/",
        {"replacement_reference": "qualify-lead-v2@1.0.0", "reason": "Moved.", "remove_after": 30},
    )
    assert response.status_code == 302
    assert Deprecation.objects.get(pk=v1.pk).replacement == successor
    history = page(signed_in(admin), BASE)
    assert f">{successor.path}</a>" in history  # another artifact's replacement shows its path


# --- retiring -----------------------------------------------------------------------------


def test_retire_from_the_version_page(admin: Any, versions: tuple[Version, Version]) -> None:
    v1, _ = versions
    client = signed_in(admin)
    response = client.post(f"{BASE}v/1.0.0/retire/", {"rationale": "   "})
    assert response.status_code == 400
    assert field_errors(response.content.decode(), "rationale")
    assert not Retirement.objects.exists()

    response = client.post(f"{BASE}v/1.0.0/retire/", {"rationale": "Fell below its gates."})
    assert response.status_code == 302
    retirement = Retirement.objects.get(pk=v1.pk)
    assert retirement.rationale == "Fell below its gates."
    assert retirement.retired_by == admin
    html = page(client, v1.get_absolute_url())
    assert 'id="retire"' not in html
    assert 'id="deprecate"' not in html
    assert "Retired (simulation-only)" in html

    response = client.post(f"{BASE}v/1.0.0/retire/", {"rationale": "again"})
    assert response.status_code == 409
    assert "already retired" in response.content.decode()
    assert Retirement.objects.count() == 1


def test_deliberate_acts_need_the_password(admin: Any, versions: tuple[Version, Version]) -> None:
    v1, _ = versions
    client = signed_in(admin, confirmed=False)
    html = page(client, v1.get_absolute_url())
    for form in ("deprecate", "retire"):
        section = html.split(f'id="{form}"')[1].split("</details>")[0]
        assert 'name="password"' in section
    assert (
        "Retiring moves prompt/acme/qualify-lead/1.0.0 to simulation-only: it can no longer "
        "be proposed or restored." in html
    )
    assert "Deprecating marks prompt/acme/qualify-lead/1.0.0 deprecated" in html
    retire = f"{BASE}v/1.0.0/retire/"
    response = client.post(retire, {"rationale": "Superseded."})
    assert response.status_code == 400
    shown = response.content.decode().split('id="retire"')[1].split("</details>")[0]
    assert "Confirm your password: it is a deliberate act." in shown
    response = client.post(retire, {"rationale": "Superseded.", "password": "wrong"})
    assert response.status_code == 403
    shown = response.content.decode().split('id="retire"')[1].split("</details>")[0]
    assert "That is not your password. Nothing changed." in shown
    deprecate = f"{BASE}v/1.0.0/deprecate/"
    data = {"replacement": "1.1.0", "reason": "Superseded.", "remove_after": "30"}
    response = client.post(deprecate, data)
    assert response.status_code == 400
    assert "Confirm your password" in " ".join(field_errors(response.content.decode(), "password"))
    response = client.post(deprecate, {**data, "password": "wrong"})
    assert response.status_code == 403
    assert not Retirement.objects.exists()
    assert not Deprecation.objects.exists()

    response = client.post(retire, {"rationale": "Superseded.", "password": "pw"})
    assert response.status_code == 302
    assert Retirement.objects.get(pk=v1.pk).rationale == "Superseded."


# --- ownership ----------------------------------------------------------------------------


def test_change_owner_from_the_artifact_page(
    admin: Any, author: Any, prompt: Artifact, make_user: Any, globex: Any
) -> None:
    carol = make_user("carol", acme="member")
    outsider = make_user("outsider", globex="member")
    client = signed_in(admin)
    html = page(client, BASE)
    select = html.split('name="owner"')[1].split("</select>")[0]
    assert ">carol<" in select
    assert "outsider" not in select

    response = client.post(f"{BASE}owner/", {"owner": carol.username, "reason": ""})
    assert response.status_code == 400
    assert field_errors(response.content.decode(), "reason")
    response = client.post(f"{BASE}owner/", {"owner": outsider.username, "reason": "x"})
    assert response.status_code == 400
    assert field_errors(response.content.decode(), "owner")
    prompt.refresh_from_db()
    assert prompt.owner == author

    response = client.post(
        f"{BASE}owner/", {"owner": carol.username, "reason": "Carol runs it now."}
    )
    assert response.status_code == 302
    prompt.refresh_from_db()
    assert prompt.owner == carol
    event = Event.objects.get(kind=EventKind.OWNERSHIP_CHANGED)
    assert event.payload["from"] == "author"
    assert event.payload["to"] == "carol"
    assert event.payload["reason"] == "Carol runs it now."
    assert '<dd id="owner">carol</dd>' in page(client, BASE)

    response = client.post(f"{BASE}owner/", {"owner": carol.username, "reason": "again"})
    assert response.status_code == 409
    assert "already owns" in " ".join(field_errors(response.content.decode(), "owner"))
    assert Event.objects.filter(kind=EventKind.OWNERSHIP_CHANGED).count() == 1

    # The owner may hand it on too, as the service allows.
    owner_client = signed_in(carol)
    assert 'id="change-owner"' in page(owner_client, BASE)
    response = owner_client.post(f"{BASE}owner/", {"owner": author.username, "reason": "Leaving."})
    assert response.status_code == 302
    prompt.refresh_from_db()
    assert prompt.owner == author


def test_bad_input_never_errors(admin: Any, versions: tuple[Version, Version]) -> None:
    client = signed_in(admin)
    for path, data in [
        (f"{BASE}v/1.0.0/deprecate/", {"remove_after": "1e999", "replacement": "\x00"}),
        (
            f"{BASE}v/1.0.0/deprecate/",
            {"replacement_reference": "::::", "reason": "x", "remove_after": 30},
        ),
        (f"{BASE}v/1.0.0/retire/", {"rationale": "x" * 6000}),
        (f"{BASE}owner/", {"owner": "\x00", "reason": "x"}),
        (f"{BASE}v/9.9.9/retire/", {"rationale": "x"}),
    ]:
        response = client.post(path, data)
        assert response.status_code in (400, 404, 409), (path, response.status_code)
    assert not Deprecation.objects.exists()
    assert not Retirement.objects.exists()
