"""``registry action-eligible|deputy|safety-switch``: each calls its service (events written);
a refusal is one ``error:`` line and exit status 2."""

from __future__ import annotations

from typing import Any

import pytest

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from registry import selectors
from registry.models import Artifact
from tests.cli import refused
from tests.registry.test_cli import run

pytestmark = pytest.mark.django_db
PATH = "prompt/acme/qualify-lead"


def test_flag_halt_release_and_deputy_from_the_command_line(
    prompt: Artifact, make_user: Any
) -> None:
    admin = make_user("admin", acme=["member", "administrator"])
    make_user("dee", acme="member")
    assert run("action-eligible", PATH, "on", "--reason", "Refunds.", "--as", "admin") == (
        f"{PATH}: action-eligible\n"
    )
    out = run("safety-switch", "engage", PATH, "--reason", "Refunds twice.", "--as", "admin")
    assert out == f"halted: safety switch engaged on {PATH} by admin: Refunds twice.\n"
    assert refused("registry", "safety-switch", "engage", PATH, "--reason", "Again.") == (
        f"artifact: The safety switch of {PATH} is already engaged (by admin at "
        + selectors.engaged_switch(Artifact.objects.get(pk=prompt.pk)).engaged_at.strftime(
            "%Y-%m-%d %H:%M"
        )
        + " UTC: Refunds twice.)."
    )
    assert refused("registry", "action-eligible", PATH, "off", "--reason", "No.") == (
        f"value: The safety switch of {PATH} is engaged: release it before marking the artifact not "
        "action-eligible."
    )
    out = run("safety-switch", "release", PATH, "--reason", "Fixed.")
    assert out == f"{PATH}: released; resolution names its versions again\n"
    assert run("deputy", PATH, "dee") == f"{PATH}: deputy dee\n"
    assert run("deputy", PATH, "-") == f"{PATH}: deputy nobody\n"
    kinds = list(
        Event.objects.filter(subject_id=str(prompt.pk))
        .order_by("seq")
        .values_list("kind", flat=True)
    )
    assert kinds[-5:] == [
        EventKind.ARTIFACT_ACTION_ELIGIBLE_SET,
        EventKind.SAFETY_SWITCH_ENGAGED,
        EventKind.SAFETY_SWITCH_RELEASED,
        EventKind.ARTIFACT_DEPUTY_SET,
        EventKind.ARTIFACT_DEPUTY_SET,
    ]
    assert Event.objects.get(kind=EventKind.SAFETY_SWITCH_ENGAGED).actor == admin


def test_refusals_are_one_line(prompt: Artifact, make_user: Any) -> None:
    make_user("reviewer", acme=["member", "reviewer"])
    assert refused("registry", "safety-switch", "engage", PATH, "--reason", "Stop.") == (
        f"artifact: {PATH} is not action-eligible: only action-eligible artifacts have a safety switch "
        "(deactivate it to stop it serving)."
    )
    assert refused("registry", "safety-switch", "release", PATH, "--reason", "Go.") == (
        f"artifact: The safety switch of {PATH} is not engaged."
    )
    assert refused(
        "registry", "action-eligible", PATH, "on", "--reason", "R.", "--as", "reviewer"
    ) == ("Only an administrator of acme can mark an artifact action-eligible.")
    assert refused("registry", "deputy", PATH, "author") == (
        f"deputy: author owns {PATH}: the deputy is someone else."
    )
    assert refused("registry", "safety-switch", "engage", "prompt/acme", "--reason", "x") == (
        "artifact: 'prompt/acme' is not CLASS/TENANT/SLUG."
    )
