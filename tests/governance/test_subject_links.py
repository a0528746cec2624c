"""Each row of the event feed links to its subject's page, without a query per row."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.events.selectors import subject_url
from tests.factories import grant_waiver
from tests.reviews.conftest import open_change, people, prompt, prompt_v1

__all__ = ["open_change", "people", "prompt", "prompt_v1"]  # fixtures used here


def test_artifacts_versions_changes_and_waivers_link_to_their_pages(
    acme: Any,
    people: dict[str, Any],
    open_change: Any,
    prompt_v1: Any,
    django_assert_num_queries: Any,
) -> None:
    change = open_change(prompt_v1)
    waiver = grant_waiver(
        acme, people["admin"], people["reviewer"], expires_in=timedelta(days=3), change=change
    )
    events = {
        e.kind: e
        for e in Event.objects.filter(
            kind__in=[
                EventKind.ARTIFACT_CREATED,
                EventKind.ARTIFACT_VERSION_PUBLISHED,
                EventKind.CHANGE_REQUEST_OPENED,
                EventKind.WAIVER_GRANTED,
            ]
        )
    }
    with django_assert_num_queries(0):
        links = {kind: subject_url(event) for kind, event in events.items()}
    assert links == {
        EventKind.ARTIFACT_CREATED: prompt_v1.artifact.get_absolute_url(),
        EventKind.ARTIFACT_VERSION_PUBLISHED: prompt_v1.get_absolute_url(),
        EventKind.CHANGE_REQUEST_OPENED: change.get_absolute_url(),
        EventKind.WAIVER_GRANTED: waiver.get_absolute_url(),
    }
