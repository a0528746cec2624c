"""Submitting a change queues its required checks on commit; a real worker over Redis runs them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from registry import services as registry
from registry.choices import Stage
from registry.models import VersionState
from reviews import selectors, services
from reviews.choices import CheckKind
from tests.integration.workers import redis_broker, start_worker, stop, wait_for
from tests.reviews.conftest import make_artifact, people, publish

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]
__all__ = ["people"]  # a fixture, imported for use here

INTERFACE = {
    "type": "object",
    "properties": {"intent": {"type": "string"}, "language": {"type": "string"}},
}
CORPUS = {
    "cases": [
        {"id": "bill", "input": {"intent": "billing"}, "expected": "billing"},
        {"id": "de", "input": {"intent": "other", "language": "de"}, "expected": "dach"},
        {"id": "rest", "input": {"intent": "other"}, "expected": "general"},
    ]
}


@pytest.fixture
def broker() -> Iterator[str]:
    yield from redis_broker()


def _finished(change: Any) -> bool:
    runs = selectors.check_summary(change).runs.values()
    return all(r is not None and r.status not in ("pending", "running") for r in runs)


@pytest.mark.usefixtures("broker")
def test_worker_runs_the_required_checks_of_a_ruleset_change(
    tmp_path: Any, acme: Any, people: dict[str, Any]
) -> None:
    registry.install_builtin_classes()
    rules = make_artifact(acme, "routing-ruleset", "support-routing")
    good = publish(
        rules,
        impact="major",
        data={
            "interface": INTERFACE,
            "default_route": "general",
            "rules": [
                {"id": "billing", "when": {"intent": "billing"}, "route": "billing"},
                {"id": "dach", "when": {"language": "de"}, "route": "dach"},
            ],
        },
    )
    corpus = publish(make_artifact(acme, "golden-corpus", "triage"), impact="major", data=CORPUS)
    change = services.change_create(
        tenant=acme,
        actor=people["author"],
        title="Route German tickets",
        rollback_plan="Roll back to the previous ruleset",
        proposed=[good],
        golden_corpus=corpus,
    )
    worker = start_worker(tmp_path)
    try:
        services.change_submit(change=change, actor=people["author"])  # queues on commit
        assert wait_for(lambda: _finished(change)), (tmp_path / "worker.log").read_text()
    finally:
        stop(worker)
    runs = selectors.check_summary(change).runs
    assert {k: r.status for k, r in runs.items() if r} == {
        CheckKind.RULES_LINT: "passed",
        CheckKind.RULES_SIMULATION: "passed",
        CheckKind.PACK_VERIFICATION: "passed",
    }
    simulation = runs[CheckKind.RULES_SIMULATION]
    assert simulation is not None
    assert simulation.finished_at is not None
    assert simulation.result[good.path]["summary"]["cases"] == 3
    assert simulation.result[good.path]["summary"]["mismatches"] == 0
    assert VersionState.objects.get(version=good).stage == Stage.EVALUATED
    completed = Event.objects.filter(kind=EventKind.CHECK_COMPLETED, subject_id=str(change.pk))
    assert completed.count() == 3
    assert {e.via for e in completed} == {"task:run_check"}
