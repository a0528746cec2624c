"""On PostgreSQL the database itself refuses to rewrite a published version."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from registry import services
from registry.models import ArtifactClass, Version

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE registry_version SET content_text = 'rewritten'",
        "DELETE FROM registry_version",
        "UPDATE registry_versiondependency SET reference = 'x'",
    ],
)
def test_raw_update_of_a_version_is_rejected(acme, sql):
    services.install_builtin_classes()
    cls = ArtifactClass.objects.get(slug="prompt")
    tone = services.artifact_create(
        artifact_class=cls, tenant=acme, slug="tone", title="Tone", actor=None
    )
    t1, _ = services.version_publish(
        artifact=tone,
        content=services.Content(text="Be nice."),
        impact="major",
        reason="x",
        actor=None,
    )
    reply = services.artifact_create(
        artifact_class=cls, tenant=acme, slug="reply", title="Reply", actor=None
    )
    services.version_publish(
        artifact=reply,
        content=services.Content(text="Hi."),
        impact="major",
        reason="x",
        actor=None,
        dependencies=[t1.pinned],
    )
    before = list(Version.objects.order_by("id").values_list("content_text", "manifest_sha256"))
    with pytest.raises(DatabaseError) as err, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert "pgtrigger: Cannot" in str(err.value)
    assert (
        list(Version.objects.order_by("id").values_list("content_text", "manifest_sha256"))
        == before
    )
