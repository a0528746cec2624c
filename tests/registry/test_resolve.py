"""Resolution tells production the active version only, says its stage, and costs two statements."""

from __future__ import annotations

from typing import Any

import pytest

from accounts import services as accounts
from accounts.choices import Role
from governance.kernel.errors import Conflict
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from registry import selectors
from registry import services as registry
from registry.choices import Stage
from registry.models import Artifact, Version
from tests.reviews.conftest import make_artifact, people, prompt, prompt_v1, prompt_v2, publish

__all__ = ["people", "prompt", "prompt_v1", "prompt_v2"]  # fixtures used here

pytestmark = pytest.mark.django_db
RESOLVE = "/api/v1/resolve/"


def make_active(version: Version) -> None:
    """Test setup: what a promotion leaves behind (the flow itself is tested in reviews)."""
    Artifact.objects.filter(pk=version.artifact_id).update(active_version=version)
    registry.version_stage_set(version=version, stage=Stage.ACTIVE, actor=None)


def resolve(client: Any, **params: str) -> Any:
    return client.get(RESOLVE, params)


def test_unversioned_reference_with_nothing_active_is_a_404_that_says_so(
    people: dict[str, Any], prompt_v1: Version, prompt_v2: Version, token_client: Any
) -> None:
    client = token_client(people["author"])
    for params in ({"ref": "prompt/acme/qualify-lead"}, {"ref": "qualify-lead", "tenant": "acme"}):
        resp = resolve(client, **params)
        assert resp.status_code == 404, resp.json()
        error = resp.json()["error"]
        assert error["field"] == "reference"
        assert error["message"] == (
            "prompt/acme/qualify-lead has no active version; name a version to read another one."
        )


def test_unversioned_reference_answers_the_active_version_not_the_newest(
    people: dict[str, Any], prompt_v1: Version, prompt_v2: Version, token_client: Any
) -> None:
    make_active(prompt_v1)  # 1.1.0 is a newer draft nobody reviewed
    client = token_client(people["author"])
    for params in ({"ref": "prompt/acme/qualify-lead"}, {"ref": "qualify-lead", "tenant": "acme"}):
        body = resolve(client, **params).json()
        assert (body["version"], body["sha256"]) == ("1.0.0", prompt_v1.manifest_sha256)
        assert (body["stage"], body["active"]) == ("active", True)
    # the draft only by its exact number, and it says what it is
    draft = resolve(client, ref="qualify-lead@1.1.0", tenant="acme").json()
    assert (draft["version"], draft["stage"], draft["active"]) == ("1.1.0", "draft", False)


def test_after_a_rollback_the_rolled_back_version_no_longer_resolves_unversioned(
    people: dict[str, Any], prompt_v1: Version, prompt_v2: Version, token_client: Any
) -> None:
    make_active(prompt_v2)
    client = token_client(people["author"])
    assert resolve(client, ref="prompt/acme/qualify-lead").json()["version"] == "1.1.0"
    # what a rollback leaves: the pointer back on 1.0.0, 1.1.0 approved again
    make_active(prompt_v1)
    registry.version_stage_set(version=prompt_v2, stage=Stage.APPROVED, actor=None)
    body = resolve(client, ref="prompt/acme/qualify-lead").json()
    assert (body["version"], body["active"]) == ("1.0.0", True)
    old = resolve(client, ref="prompt/acme/qualify-lead/1.1.0").json()
    assert (old["stage"], old["active"]) == ("approved", False)


def test_another_tenants_artifact_reads_like_a_missing_one(
    people: dict[str, Any], globex: Any, make_user: Any, token_client: Any
) -> None:
    theirs = make_artifact(globex, "prompt", "secret")
    make_active(publish(theirs, impact="major", text="Hidden {{ x }}."))
    client = token_client(people["author"])
    for ref in ("prompt/globex/secret", "prompt/globex/nothing-here"):
        resp = resolve(client, ref=ref)
        assert resp.status_code == 404
        assert resp.json()["error"]["message"] == f"No version '{ref}'."


def test_a_platform_administrator_resolves_in_every_tenant_without_a_query_of_its_own(
    globex: Any, make_user: Any, token_client: Any, django_assert_num_queries: Any
) -> None:
    theirs = make_artifact(globex, "prompt", "secret")
    make_active(publish(theirs, impact="major", text="Hidden {{ x }}."))
    platform = make_user("platform")
    accounts.role_grant(user=platform, tenant=None, role=Role.ADMINISTRATOR, actor=None)
    client = token_client(platform)
    resolve(client, ref="prompt/globex/secret")  # the token's first use is recorded once
    with django_assert_num_queries(2):  # the token with its user, the version
        body = resolve(client, ref="prompt/globex/secret").json()
    assert (body["reference"], body["active"]) == ("prompt/globex/secret/1.0.0", True)


def test_resolve_and_version_detail_query_counts(
    people: dict[str, Any],
    prompt_v1: Version,
    prompt_v2: Version,
    token_client: Any,
    django_assert_num_queries: Any,
) -> None:
    make_active(prompt_v2)
    registry.version_deprecate(
        version=prompt_v1,
        replacement=prompt_v2,
        reason="politer",
        remove_after_days=30,
        actor=people["admin"],
    )
    client = token_client(people["author"])
    resolve(client, ref="qualify-lead@1.0.0", tenant="acme")  # touches the token
    # token+user, then the version with its stage, deprecation (replacement, people) and retirement
    with django_assert_num_queries(2):
        body = resolve(client, ref="qualify-lead@1.0.0", tenant="acme").json()
    assert body["deprecation"]["replacement"]["path"] == prompt_v2.path
    assert body["stage"] == "deprecated"
    assert body["retirement"] is None
    with django_assert_num_queries(2):
        assert resolve(client, ref="prompt/acme/qualify-lead").json()["version"] == "1.1.0"
    # the detail adds the signing keys (signature check), dependencies and dependents
    with django_assert_num_queries(5):
        detail = client.get("/api/v1/artifacts/prompt/acme/qualify-lead/versions/1.0.0/").json()
    assert detail["stage"] == "deprecated"
    assert detail["verified"]["ok"] is True


@pytest.mark.usefixtures("people")
def test_unversioned_resolution_does_not_read_the_history(
    prompt: Artifact, django_assert_num_queries: Any
) -> None:
    first = publish(prompt, impact="major", text="Qualify {{ customer }}.")
    for i in range(20):
        publish(prompt, impact="patch", text=f"Qualify {{{{ customer }}}} #{i}.")
    make_active(first)
    with django_assert_num_queries(1):
        found = selectors.version_by_reference_unscoped("prompt/acme/qualify-lead")
    assert found == first
    assert selectors.stage_of(found) == Stage.ACTIVE


# --- the recommended version is never deprecated, removed or retired --------------------------


def test_deprecating_the_recommended_version_moves_the_recommendation_to_the_active_one(
    people: dict[str, Any], prompt: Artifact, prompt_v1: Version, prompt_v2: Version
) -> None:
    assert Artifact.objects.get(pk=prompt.pk).recommended_version == prompt_v1  # the first
    make_active(prompt_v2)
    registry.version_deprecate(
        version=prompt_v1,
        replacement=prompt_v2,
        reason="politer",
        remove_after_days=30,
        actor=people["admin"],
    )
    assert Artifact.objects.get(pk=prompt.pk).recommended_version == prompt_v2
    event = Event.objects.get(kind=EventKind.ARTIFACT_RECOMMENDED)
    assert event.actor_id == people["admin"].pk
    assert event.payload == {
        "path": prompt.path,
        "version": "1.1.0",
        "sha256": prompt_v2.manifest_sha256,
        "previous": "1.0.0",
        "reason": "1.0.0 was deprecated",
    }
    with pytest.raises(Conflict) as refused:
        registry.artifact_recommend(artifact=prompt, version=prompt_v1, actor=people["admin"])
    assert refused.value.field == "version"
    assert "is deprecated" in refused.value.message


def test_retiring_the_recommended_version_with_nothing_active_leaves_no_recommendation(
    people: dict[str, Any], prompt: Artifact, prompt_v1: Version, prompt_v2: Version
) -> None:
    registry.version_retire(version=prompt_v1, rationale="below the gate", actor=people["admin"])
    assert Artifact.objects.get(pk=prompt.pk).recommended_version is None
    event = Event.objects.get(kind=EventKind.ARTIFACT_RECOMMENDED)
    assert (event.payload["version"], event.payload["reason"]) == (None, "1.0.0 was retired")


def test_a_stale_stored_recommendation_is_never_shown(
    people: dict[str, Any],
    prompt: Artifact,
    prompt_v1: Version,
    prompt_v2: Version,
    token_client: Any,
    client: Any,
) -> None:
    make_active(prompt_v2)
    registry.version_deprecate(
        version=prompt_v1,
        replacement=prompt_v2,
        reason="politer",
        remove_after_days=30,
        actor=people["admin"],
    )
    # data written before the fix: the pointer still names the deprecated version
    Artifact.objects.filter(pk=prompt.pk).update(recommended_version=prompt_v1)
    api = token_client(people["author"])
    body = api.get("/api/v1/artifacts/prompt/acme/qualify-lead/").json()
    assert body["recommended_version"] is None
    assert body["recommended"] is None
    assert body["active_version"] == "1.1.0"
    client.force_login(people["author"])
    page = client.get(prompt.get_absolute_url()).content.decode()
    assert '<dd id="recommended-version">—</dd>' in page


def test_the_registry_list_shows_the_active_version(
    people: dict[str, Any], prompt: Artifact, prompt_v1: Version, prompt_v2: Version, client: Any
) -> None:
    client.force_login(people["author"])
    page = client.get("/registry/").content.decode()
    assert "Active version" in page
    assert "none active" in page
    make_active(prompt_v1)
    page = client.get("/registry/").content.decode()
    assert f'<a href="{prompt_v1.get_absolute_url()}">1.0.0</a>' in page
    assert "none active" not in page
