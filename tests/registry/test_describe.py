"""An artifact's title and summary, changed by its owner or an administrator: the service (its
event with before and after, its refusals), the artifact page's form, the API, the CLI, and the
inventory criterion pointing at the form when the summary is missing."""

from __future__ import annotations

from typing import Any

import pytest

from governance.kernel.errors import Conflict, DomainError, Forbidden
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from registry import services
from registry.models import Artifact
from tests.cli import refused
from tests.registry.test_cli import run
from tests.registry.test_lifecycle_views import field_errors, page, signed_in
from tests.registry.test_safety_views import section

pytestmark = pytest.mark.django_db
BASE = "/registry/prompt/acme/qualify-lead/"
API = "/api/v1/artifacts/prompt/acme/qualify-lead/"
SUMMARY = "Qualifies inbound leads for the sales team."


@pytest.fixture
def admin(make_user: Any, acme: Any) -> Any:
    return make_user("admin", acme=["member", "administrator"])


@pytest.fixture
def reviewer(make_user: Any, acme: Any) -> Any:
    return make_user("reviewer", acme=["member", "reviewer"])


def described() -> list[dict[str, Any]]:
    return [
        e.payload for e in Event.objects.filter(kind=EventKind.ARTIFACT_DESCRIBED).order_by("seq")
    ]


def test_the_owner_describes_it_and_the_event_says_before_and_after(
    prompt: Artifact, author: Any
) -> None:
    done = services.artifact_describe(
        artifact=prompt, title="  Qualify lead  ", summary=f" {SUMMARY} ", actor=author
    )
    assert (done.title, done.summary) == ("Qualify lead", SUMMARY)
    assert Artifact.objects.get(pk=prompt.pk).summary == SUMMARY
    assert described() == [
        {
            "path": "prompt/acme/qualify-lead",
            "before": {"title": "Qualify lead", "summary": ""},
            "after": {"title": "Qualify lead", "summary": SUMMARY},
        }
    ]
    event = Event.objects.get(kind=EventKind.ARTIFACT_DESCRIBED)
    assert event.actor == author


def test_refusals_name_the_field_and_write_nothing(
    prompt: Artifact, author: Any, admin: Any, reviewer: Any
) -> None:
    with pytest.raises(Forbidden, match="Only the owner or an administrator"):
        services.artifact_describe(artifact=prompt, title="X", summary="Y", actor=reviewer)
    with pytest.raises(DomainError) as blank:
        services.artifact_describe(artifact=prompt, title="  ", summary=SUMMARY, actor=author)
    assert blank.value.field == "title"
    with pytest.raises(DomainError) as long:
        services.artifact_describe(artifact=prompt, title="T", summary="x" * 4001, actor=author)
    assert long.value.field == "summary"
    with pytest.raises(Conflict, match="already has this title and summary"):
        services.artifact_describe(artifact=prompt, title="Qualify lead", summary="", actor=admin)
    assert described() == []
    # An administrator of the tenant may, like the owner.
    services.artifact_describe(artifact=prompt, title="Qualify", summary=SUMMARY, actor=admin)
    assert described()[0]["after"] == {"title": "Qualify", "summary": SUMMARY}


def test_the_page_offers_the_form_to_the_owner_and_saves_it(
    prompt: Artifact, author: Any, reviewer: Any
) -> None:
    assert 'id="describe"' not in page(signed_in(reviewer), BASE)
    client = signed_in(author)
    form = section(page(client, BASE), "describe")
    assert 'value="Qualify lead"' in form
    response = client.post(BASE + "describe/", {"title": "Qualify lead", "summary": SUMMARY})
    assert response.status_code == 302
    assert response["Location"] == BASE
    html = page(client, BASE)
    assert f'id="summary">{SUMMARY}<' in html
    assert "title and summary saved" in html
    bad = client.post(BASE + "describe/", {"title": "", "summary": SUMMARY})
    assert bad.status_code == 400
    assert field_errors(bad.content.decode(), "title")
    same = client.post(BASE + "describe/", {"title": "Qualify lead", "summary": SUMMARY})
    assert same.status_code == 409
    assert "already has this title and summary" in same.content.decode()
    refused_post = signed_in(reviewer).post(BASE + "describe/", {"title": "X", "summary": "Y"})
    assert refused_post.status_code == 403
    assert len(described()) == 1


def test_the_api_describes_it_keeping_what_is_left_out(
    prompt: Artifact, author: Any, reviewer: Any, token_client: Any
) -> None:
    client = token_client(author)
    got = client.post(API + "describe/", {"summary": SUMMARY}, format="json")
    assert got.status_code == 200, got.json()
    assert (got.json()["title"], got.json()["summary"]) == ("Qualify lead", SUMMARY)
    blank = client.post(API + "describe/", {"title": ""}, format="json")
    assert blank.status_code == 400
    assert blank.json()["error"]["field"] == "title"
    same = client.post(API + "describe/", {"summary": SUMMARY}, format="json")
    assert same.status_code == 409
    other = token_client(reviewer).post(API + "describe/", {"summary": "x"}, format="json")
    assert other.status_code == 403
    assert len(described()) == 1
    schema = client.get("/api/v1/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/artifacts/{cls}/{tenant}/{slug}/describe/"]["post"]
    assert operation["requestBody"]


def test_the_cli_describes_it(prompt: Artifact, author: Any) -> None:
    out = run("describe", prompt.path, "--summary", SUMMARY, "--as", "author")
    assert out.strip() == f"prompt/acme/qualify-lead: Qualify lead - {SUMMARY}"
    assert described()[0]["after"]["summary"] == SUMMARY
    assert "title" in refused("registry", "describe", prompt.path, "--title", " ")
    assert "nothing to change" in refused("registry", "describe", prompt.path)
