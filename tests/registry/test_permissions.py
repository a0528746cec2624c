"""One rule per registry action (registry.permissions): the service refuses with the
predicate's reason; the pages offer the form only to those it allows, and a forced POST
shows the reason on the page (403), never a bare 403."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from governance.kernel.errors import Forbidden
from governance.kernel.events.models import Event
from governance.kernel.permissions import Decision
from registry import permissions, services
from registry.models import Artifact, Deprecation, Retirement, Version
from tests.registry.conftest import publish

pytestmark = pytest.mark.django_db

BASE = "/registry/prompt/acme/qualify-lead/"


@pytest.fixture
def admin(make_user: Any, acme: Any) -> Any:
    return make_user("admin", acme=["member", "administrator"])


@pytest.fixture
def bob(make_user: Any, acme: Any) -> Any:
    return make_user("bob", acme="member")


@pytest.fixture
def versions(prompt: Artifact) -> tuple[Version, Version]:
    return publish(prompt, "Qualify {{ customer }}.", "major"), publish(
        prompt, "Qualify {{ customer }} politely.", "minor"
    )


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _refused(call: Any, reason: str) -> None:
    before = Event.objects.count()
    with pytest.raises(Forbidden) as refused:
        call()
    assert refused.value.message == reason
    assert Event.objects.count() == before


def test_deprecate_and_retire(admin: Any, bob: Any, versions: tuple[Version, Version]) -> None:
    v1, v2 = versions
    deprecate_reason = "Only an administrator of acme can deprecate a version."
    retire_reason = "Only an administrator of acme can retire a version."
    assert permissions.can_deprecate(bob, v1) == Decision(False, deprecate_reason)
    assert permissions.can_deprecate(admin, v1)
    assert permissions.can_retire(admin, v1)
    _refused(
        lambda: services.version_deprecate(
            version=v1, replacement=v2, reason="x", remove_after_days=30, actor=bob
        ),
        deprecate_reason,
    )
    _refused(lambda: services.version_retire(version=v1, rationale="x", actor=bob), retire_reason)
    page = _client(bob).get(f"{BASE}v/1.0.0/").content.decode()
    assert 'id="lifecycle"' not in page
    assert 'id="deprecate"' not in page
    page = _client(admin).get(f"{BASE}v/1.0.0/").content.decode()
    assert 'id="deprecate"' in page
    assert 'id="retire"' in page
    forced = _client(bob).post(
        f"{BASE}v/1.0.0/deprecate/", {"replacement": v2.version, "reason": "x", "remove_after": 30}
    )
    assert forced.status_code == 403
    html = forced.content.decode()
    assert deprecate_reason in html
    assert 'id="deprecate"' not in html
    assert "You do not have access to this page." not in html
    forced = _client(bob).post(f"{BASE}v/1.0.0/retire/", {"rationale": "x"})
    assert forced.status_code == 403
    assert retire_reason in forced.content.decode()
    assert not Deprecation.objects.exists()
    assert not Retirement.objects.exists()


def test_change_owner(
    admin: Any, author: Any, bob: Any, prompt: Artifact, versions: tuple[Version, Version]
) -> None:
    reason = "Only the owner or an administrator can change the owner."
    assert permissions.can_change_owner(author, prompt)  # the owner hands it on
    assert permissions.can_change_owner(admin, prompt)
    assert permissions.can_change_owner(bob, prompt) == Decision(False, reason)
    _refused(
        lambda: services.artifact_owner_set(artifact=prompt, owner=bob, actor=bob, reason="x"),
        reason,
    )
    assert 'id="change-owner"' not in _client(bob).get(BASE).content.decode()
    assert 'id="change-owner"' in _client(author).get(BASE).content.decode()
    forced = _client(bob).post(f"{BASE}owner/", {"owner": "bob", "reason": "mine now"})
    assert forced.status_code == 403
    html = forced.content.decode()
    assert reason in html
    assert 'id="change-owner"' not in html
    prompt.refresh_from_db()
    assert prompt.owner == author


def test_recommend(
    admin: Any, author: Any, bob: Any, prompt: Artifact, versions: tuple[Version, Version]
) -> None:
    v1, _ = versions
    reason = "Only the owner or an administrator can set the recommended version."
    _refused(lambda: services.artifact_recommend(artifact=prompt, version=v1, actor=bob), reason)
    assert permissions.can_recommend(author, prompt)
    assert permissions.can_recommend(admin, prompt)


def test_publish_needs_a_member(prompt: Artifact, make_user: Any, globex: Any) -> None:
    stranger = make_user("stranger", globex="member")
    assert permissions.can_publish(stranger, prompt.tenant) == Decision(
        False, "Only members of 'acme' can publish there."
    )
    assert permissions.can_publish(None, prompt.tenant)
