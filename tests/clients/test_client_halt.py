"""A halted slot (the artifact's safety switch engaged) reaches the client at its next poll as
"nothing serves": no version, ``variant="halted"``, the reason in ``halted`` and the warnings;
never the version held before, nor a configured fallback pin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from registry_client import RegistryClient

from registry import services as registry
from tests.clients.test_client_runtime import (
    SLOT,
    assert_same,
    make_client,
    proxy,
    server_answer,
    token,
    world,
)
from tests.rollouts.runtime_world import World

__all__ = ["make_client", "proxy", "token", "world"]  # fixtures used here

pytestmark = pytest.mark.django_db(transaction=True)

HALT = "halted: safety switch engaged on prompt/platform/qualify-lead by the system: Stop it."


def test_a_halted_slot_resolves_to_nothing_and_a_release_serves_again(
    world: World, make_client: Callable[..., RegistryClient]
) -> None:
    client = make_client(pins={SLOT: "1.0.0"})
    assert client.resolve(SLOT).version == "1.0.0"
    artifact = registry.artifact_action_eligible_set(
        artifact=world.artifact, value=True, reason="Acts.", actor=None
    )
    registry.safety_switch_engage(artifact=artifact, reason="Stop it.", actor=None)
    assert client.refresh()
    for subject, pin in ((None, None), ("user-1", None), ("user-1", "1.0.0")):
        got = client.resolve(SLOT, subject, pin=pin)
        assert (got.ref, got.version, got.content) == (None, None, None)
        assert (got.reason, got.variant, got.halted) == ("DISABLED", "halted", HALT)
        assert got.warnings == (HALT,)
        want: dict[str, Any] = server_answer(subject, pin)
        assert_same(got, want)
        assert want["halted"] == got.halted
    registry.safety_switch_release(artifact=artifact, reason="Fixed.", actor=None)
    assert client.refresh()
    back = client.resolve(SLOT)
    assert (back.version, back.halted, back.variant) == ("1.0.0", None, "default")
