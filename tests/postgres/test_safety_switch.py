"""Races on the safety switch only PostgreSQL shows: administrators halting (and un-flagging)
an artifact at once leave one engaged switch, one event, and a flag that matches."""

from __future__ import annotations

import pytest

from governance.kernel.errors import Conflict
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from registry import services
from registry.models import Artifact, SafetySwitch
from tests.factories import make_artifact
from tests.postgres.test_concurrency import run_concurrently

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_simultaneous_engages_leave_one_switch_and_one_event(acme):
    services.install_builtin_classes()
    agent = services.artifact_action_eligible_set(
        artifact=make_artifact(acme, "prompt", "refund-agent"),
        value=True,
        reason="Refunds.",
        actor=None,
    )
    results = run_concurrently(
        6, lambda: services.safety_switch_engage(artifact=agent, reason="Stop.", actor=None)
    )
    switches = [r for r in results if isinstance(r, SafetySwitch)]
    refusals = [r for r in results if isinstance(r, Conflict)]
    assert (len(switches), len(refusals)) == (1, 5), results
    assert SafetySwitch.objects.filter(artifact=agent, released_at__isnull=True).count() == 1
    assert Event.objects.filter(kind=EventKind.SAFETY_SWITCH_ENGAGED).count() == 1


def test_engage_racing_the_flag_off_never_leaves_a_halt_on_a_plain_artifact(acme):
    services.install_builtin_classes()
    agent = services.artifact_action_eligible_set(
        artifact=make_artifact(acme, "prompt", "refund-agent"),
        value=True,
        reason="Refunds.",
        actor=None,
    )
    calls = iter(range(100))

    def work() -> object:
        if next(calls) % 2:
            return services.safety_switch_engage(artifact=agent, reason="Stop.", actor=None)
        return services.artifact_action_eligible_set(
            artifact=agent, value=False, reason="Plain.", actor=None
        )

    run_concurrently(4, work)
    row = Artifact.objects.get(pk=agent.pk)
    engaged = SafetySwitch.objects.filter(artifact=agent, released_at__isnull=True).exists()
    assert not (engaged and not row.action_eligible)
