"""Races on change requests, in parallel processes against PostgreSQL.

20 identical approvals by one person give one approval; 50 promotions of one change
give exactly one promotion, one activation and one event; the losers get a clear
domain error (a 4xx in the API), never a crash.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections

from governance.kernel.errors import DomainError
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.events.services import verify_database
from registry import services as registry
from reviews import services
from reviews.choices import CheckStatus
from reviews.models import Activation, Approval, ChangeRequest, CheckRun
from tests.reviews.conftest import PINS, make_artifact, people, publish

__all__ = ["people"]  # a fixture, imported for use here

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

_WORK: Callable[[], Any] | None = None


def _child(_: int) -> str:
    assert _WORK is not None
    try:
        result = _WORK()
        return f"ok:{getattr(result, 'pk', result)}"
    except DomainError as exc:
        return f"refused:{type(exc).__name__}:{exc.message}"
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the test
        return f"crash:{type(exc).__name__}:{exc}"
    finally:
        connections.close_all()


def in_processes(count: int, work: Callable[[], Any]) -> list[str]:
    """Run ``work`` in ``count`` forked processes at once, each with its own connection."""
    global _WORK
    _WORK = work
    connections.close_all()  # children must not share the parent's socket
    with multiprocessing.get_context("fork").Pool(count) as pool:
        return pool.map(_child, range(count), chunksize=1)


@pytest.fixture
def approved_change(acme: Any, people: dict[str, Any]) -> ChangeRequest:
    registry.install_builtin_classes()
    prompt = make_artifact(acme, "prompt", "qualify-lead", owner=people["admin"])
    version = publish(prompt, impact="major", text="Qualify {{ customer }}.", metadata=PINS)
    change = services.change_create(
        tenant=acme,
        actor=people["author"],
        title="Tune",
        rollback_plan="Go back",
        proposed=[version],
    )
    services.evidence_attach(change=change, actor=None, version=version, metrics={"safety": 0.9})
    services.change_submit(change=change, actor=people["author"])
    for run in CheckRun.objects.filter(change=change, status=CheckStatus.PENDING):
        services.check_execute(run=run)
    return change


def test_twenty_identical_approvals_give_one(
    approved_change: ChangeRequest, people: dict[str, Any]
) -> None:
    assert connection.vendor == "postgresql"
    reviewer = people["reviewer"]
    results = in_processes(
        20,
        lambda: services.approval_decide(
            change=approved_change, actor=reviewer, decision="approve", comment="fine"
        ),
    )
    assert not [r for r in results if r.startswith("crash")], results
    approvals = list(Approval.objects.filter(change=approved_change))
    assert len(approvals) == 1
    winners = {r for r in results if r.startswith("ok:")}
    assert winners == {f"ok:{approvals[0].pk}"}  # every success returned the same approval
    refused = [r for r in results if r.startswith("refused")]
    assert all("already decided" in r for r in refused), refused
    assert Event.objects.filter(kind=EventKind.APPROVAL_GRANTED).count() == 1


def test_fifty_promotions_give_one(approved_change: ChangeRequest, people: dict[str, Any]) -> None:
    for who in ("reviewer", "admin"):
        services.approval_decide(change=approved_change, actor=people[who], decision="approve")
    admin = people["admin"]
    results = in_processes(50, lambda: services.change_promote(change=approved_change, actor=admin))
    assert not [r for r in results if r.startswith("crash")], results
    assert len([r for r in results if r.startswith("ok:")]) == 1
    refused = [r for r in results if r.startswith("refused")]
    assert len(refused) == 49
    assert all("already promoted" in r for r in refused), refused[:3]
    assert Event.objects.filter(kind=EventKind.CHANGE_REQUEST_PROMOTED).count() == 1
    assert Activation.objects.filter(change=approved_change).count() == 1
    assert verify_database().ok
