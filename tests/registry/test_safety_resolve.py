"""The registry's active-version resolution (``GET /api/v1/resolve/?ref=``) refuses a halted
artifact with the halt's reason; an exact version still reads (it names nothing to production)."""

from __future__ import annotations

from typing import Any

import pytest

from registry import services as registry
from registry.models import Artifact, Version
from tests.registry.test_resolve import make_active, resolve
from tests.reviews.conftest import people, prompt, prompt_v1

__all__ = ["people", "prompt", "prompt_v1"]  # fixtures used here

pytestmark = pytest.mark.django_db
HALT = "halted: safety switch engaged on prompt/acme/qualify-lead by admin: Wrong answers."


def test_an_unversioned_reference_to_a_halted_artifact_is_a_409_with_the_reason(
    people: dict[str, Any],
    prompt: Artifact,
    prompt_v1: Version,
    token_client: Any,
    django_assert_num_queries: Any,
) -> None:
    make_active(prompt_v1)
    admin = people["admin"]
    prompt = registry.artifact_action_eligible_set(
        artifact=prompt, value=True, reason="Acts.", actor=admin
    )
    client = token_client(people["author"])
    resolve(client, ref="prompt/acme/qualify-lead")  # touches the token
    # an action-eligible artifact costs one query more: its engaged switch, if any
    with django_assert_num_queries(3):
        assert resolve(client, ref="prompt/acme/qualify-lead").json()["version"] == "1.0.0"
    registry.safety_switch_engage(artifact=prompt, reason="Wrong answers.", actor=admin)
    for params in ({"ref": "prompt/acme/qualify-lead"}, {"ref": "qualify-lead", "tenant": "acme"}):
        got = resolve(client, **params)
        assert got.status_code == 409, got.json()
        assert got.json()["error"] == {"code": "conflict", "message": HALT, "field": "ref"}
    exact = resolve(client, ref="qualify-lead@1.0.0", tenant="acme").json()
    assert (exact["version"], exact["active"]) == ("1.0.0", True)
    registry.safety_switch_release(artifact=prompt, reason="Fixed.", actor=admin)
    assert resolve(client, ref="prompt/acme/qualify-lead").json()["version"] == "1.0.0"
