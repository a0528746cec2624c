"""Admin edits of an artifact class go through ``artifact_class_update``: one event, old and new."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts import services as accounts
from governance.kernel.errors import DomainError, Forbidden
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from registry import services
from registry.models import ArtifactClass

pytestmark = pytest.mark.django_db

SCHEMA = {"type": "object", "required": ["route"]}


@pytest.fixture
def routing() -> ArtifactClass:
    return services.artifact_class_create(
        slug="routing-rules", name="Routing rules", content_kind="json", actor=None
    )


def updates() -> list[Event]:
    return list(Event.objects.filter(kind=EventKind.ARTIFACT_CLASS_UPDATED).order_by("seq"))


def test_admin_schema_edit_records_one_event_with_old_and_new(
    client: Client, make_user: Any, routing: ArtifactClass
) -> None:
    root = make_user("root")
    root.is_staff = root.is_superuser = True
    root.save()
    client.force_login(root)
    url = f"/admin/registry/artifactclass/{routing.pk}/change/"
    form = {
        "name": "Routing rules",
        "content_schema": '{"type": "object", "required": ["route"]}',
        "interface_pointer": "",
        "description": "",
        "change_reason": "route is mandatory",
    }
    resp = client.post(url, form)
    assert resp.status_code == 302, resp.content.decode()[:3000]
    assert ArtifactClass.objects.get(pk=routing.pk).content_schema == SCHEMA
    [event] = updates()
    assert event.actor == root
    assert event.payload == {
        "slug": "routing-rules",
        "changes": {"content_schema": {"old": None, "new": SCHEMA}},
        "reason": "route is mandatory",
    }
    # A bad schema is a message on the form, not a 500, and changes nothing.
    resp = client.post(url, {**form, "content_schema": '{"type": 12}'})
    assert resp.status_code == 200
    assert "Not a valid JSON Schema" in resp.content.decode()
    resp = client.post(url, {**form, "interface_pointer": "interface"})
    assert resp.status_code == 200
    assert "A JSON pointer starts with" in resp.content.decode()
    # Saving unchanged writes nothing.
    assert client.post(url, form).status_code == 302
    assert len(updates()) == 1
    assert ArtifactClass.objects.get(pk=routing.pk).content_schema == SCHEMA


def test_service_records_only_what_changed(make_user: Any, routing: ArtifactClass) -> None:
    services.artifact_class_update(
        artifact_class=routing, name="Routes", description="d", actor=None, reason="tidy"
    )
    [event] = updates()
    assert event.payload["changes"] == {
        "name": {"old": "Routing rules", "new": "Routes"},
        "description": {"old": "", "new": "d"},
    }
    with pytest.raises(DomainError) as err:
        services.artifact_class_update(artifact_class=routing, content_schema=[1], actor=None)
    assert err.value.field == "content_schema"
    boss = make_user("boss")
    with pytest.raises(Forbidden):
        services.artifact_class_update(artifact_class=routing, name="Mine", actor=boss)
    accounts.role_grant(user=boss, role="administrator", tenant=None, actor=None)
    services.artifact_class_update(artifact_class=routing, interface_pointer="/i", actor=boss)
    assert [e.actor for e in updates()] == [None, boss]
    assert ArtifactClass.objects.get(pk=routing.pk).name == "Routes"
