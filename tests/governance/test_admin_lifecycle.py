"""The admin shows waivers, deprecations and notifications, and changes none of them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from registry import services as registry
from registry.models import Artifact
from tests.factories import grant_waiver
from tests.reviews.conftest import open_change, people, prompt, prompt_v1, prompt_v2

__all__ = ["open_change", "people", "prompt", "prompt_v1", "prompt_v2"]  # fixtures used here


def test_admin_lists_lifecycle_records_read_only(
    client: Any,
    acme: Any,
    people: dict[str, Any],
    open_change: Any,
    prompt_v1: Any,
    prompt_v2: Any,
) -> None:
    waiver = grant_waiver(
        acme,
        people["admin"],
        people["reviewer"],
        expires_in=timedelta(days=3),
        change=open_change(prompt_v1),
    )
    Artifact.objects.filter(pk=prompt_v2.artifact_id).update(active_version=prompt_v2)
    registry.version_deprecate(
        version=prompt_v1, replacement=prompt_v2, reason="r", remove_after_days=30, actor=None
    )
    from accounts.models import User

    root = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(root)
    admin_client = client
    page = admin_client.get("/admin/governance/waiver/").content.decode()
    assert waiver.reference in page
    assert 'href="/admin/governance/waiver/add/"' not in page
    page = admin_client.get("/admin/registry/deprecation/").content.decode()
    assert prompt_v1.version in page
    assert prompt_v2.version in page
    detail = admin_client.get(f"/admin/governance/waiver/{waiver.pk}/change/").content.decode()
    assert 'name="_save"' not in detail  # nothing to save: read-only
