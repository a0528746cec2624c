"""Promotion and rollback racing each other, in parallel processes against PostgreSQL.

Two approved changes proposing the same version, promoted at once by many processes:
exactly one promotion, every other attempt a clear refusal, no deadlock. A rollback and
a promotion on the same artifact at once: one wins, the other is refused; never both,
never a crash.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.events.services import verify_database
from registry import services as registry
from registry.models import Artifact
from reviews import services
from reviews.choices import ChangeStatus, CheckStatus
from reviews.models import Activation, ChangeRequest, CheckRun
from tests.postgres.test_reviews import in_processes
from tests.reviews.conftest import PINS, make_artifact, people, publish

__all__ = ["people"]  # a fixture, imported for use here

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _run_checks() -> None:
    for run in CheckRun.objects.filter(status=CheckStatus.PENDING):
        services.check_execute(run=run)


def _opened(acme: Any, people: dict[str, Any], version: Any) -> ChangeRequest:
    change = services.change_create(
        tenant=acme, actor=people["author"], title="Tune", rollback_plan="Go back",
        proposed=[version],
    )  # fmt: skip
    services.evidence_attach(change=change, actor=None, version=version, metrics={"safety": 0.9})
    return services.change_submit(change=change, actor=people["author"])


def _approve(change: ChangeRequest, people: dict[str, Any]) -> ChangeRequest:
    _run_checks()
    for who in ("reviewer", "admin"):
        services.approval_decide(change=change, actor=people[who], decision="approve")
    change.refresh_from_db()
    assert change.status == ChangeStatus.APPROVED
    return change


@pytest.fixture
def prompt(acme: Any, people: dict[str, Any]) -> Artifact:
    registry.install_builtin_classes()
    return make_artifact(acme, "prompt", "qualify-lead", owner=people["admin"])


def _version(prompt: Artifact, text: str) -> Any:
    return publish(prompt, impact="major", text=text + " {{ customer }}", metadata=PINS)


def test_two_changes_proposing_one_version_promoted_at_once_give_one_promotion(
    acme: Any, people: dict[str, Any], prompt: Artifact
) -> None:
    version = _version(prompt, "Qualify")
    first, second = _opened(acme, people, version), _opened(acme, people, version)
    _approve(first, people)
    _approve(second, people)
    admin = people["admin"]
    changes = [first, second]

    def promote_either() -> Any:  # each child promotes one of the two, by its pid's parity
        return services.change_promote(change=changes[os.getpid() % 2], actor=admin)

    results = in_processes(20, promote_either)
    assert not [r for r in results if r.startswith("crash")], results
    assert len([r for r in results if r.startswith("ok:")]) == 1, results
    refused = [r for r in results if r.startswith("refused")]
    assert len(refused) == 19
    assert all(
        "already promoted" in r or "already the active version" in r or "in review" in r
        for r in refused
    ), refused
    assert Event.objects.filter(kind=EventKind.CHANGE_REQUEST_PROMOTED).count() == 1
    assert Activation.objects.count() == 1
    statuses = sorted(ChangeRequest.objects.values_list("status", flat=True))
    assert statuses.count(ChangeStatus.PROMOTED) == 1
    for change in (first, second):
        change.refresh_from_db()
        assert change.postmortem_due_at is None
        if change.status != ChangeStatus.PROMOTED:  # the other names the live version now
            assert change.items.get().current == version
    assert verify_database().ok


@pytest.mark.parametrize("attempt", range(3))
def test_a_rollback_and_a_promotion_on_one_artifact_at_once(
    acme: Any, people: dict[str, Any], prompt: Artifact, attempt: int
) -> None:
    v1, v2, v3 = (_version(prompt, f"Qualify {n}") for n in ("one", "two", "three"))
    admin = people["admin"]
    for version in (v1, v2):
        services.change_promote(
            change=_approve(_opened(acme, people, version), people), actor=admin
        )
    third = _approve(_opened(acme, people, v3), people)

    before = Activation.objects.count()

    def race() -> Any:
        if os.getpid() % 2:
            return services.change_promote(change=third, actor=admin)
        return services.rollback(artifact=prompt, actor=admin, reason="errors up")

    results = in_processes(8, race)
    assert not [r for r in results if r.startswith("crash")], results
    refused = [r for r in results if r.startswith("refused")]
    assert all(r.startswith("refused:Conflict") for r in refused), refused
    # every success wrote one activation; the artifact is where the last one put it
    wins = len([r for r in results if r.startswith("ok:")])
    assert wins >= 1
    assert Activation.objects.count() - before == wins
    last = Activation.objects.filter(artifact=prompt).order_by("-created_at").first()
    prompt.refresh_from_db()
    assert last is not None
    assert prompt.active_version == last.version
    kinds = [EventKind.CHANGE_REQUEST_PROMOTED, EventKind.ROLLOUT_ROLLED_BACK]
    assert Event.objects.filter(kind__in=kinds).count() == Activation.objects.count()
    assert verify_database().ok
