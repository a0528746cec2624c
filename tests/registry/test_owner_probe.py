"""Naming an artifact's owner cannot tell which usernames exist in other tenants."""

from __future__ import annotations

from typing import Any

import pytest

from registry.models import Artifact

pytestmark = pytest.mark.django_db


def test_unknown_and_foreign_owners_get_the_same_answer(
    author: Any, acme: Any, globex: Any, make_user: Any, token_client: Any
) -> None:
    make_user("gina", globex="member")
    client = token_client(author)
    answers = []
    for owner in ("gina", "ghost"):
        resp = client.post(
            "/api/v1/artifacts/",
            {
                "artifact_class": "prompt",
                "tenant": "acme",
                "slug": "owned",
                "title": "Owned",
                "owner": owner,
            },
            format="json",
        )
        error = resp.json()["error"]
        answers.append((resp.status_code, error["field"], error["message"].replace(owner, "?")))
    assert answers == [(400, "owner", "The owner '?' is not a member of 'acme'.")] * 2
    assert not Artifact.objects.filter(slug="owned").exists()
