"""Lock order on PostgreSQL: services that overlap never deadlock.

Each scenario runs its services in forked processes (one connection each) that start
every try together, 50 tries; a deadlock or any other crash fails the test, and the data
and the event log must add up afterwards. The setup is shared across the tries.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from threading import BrokenBarrierError
from typing import Any

import pytest
from django.db import connection, connections
from django.utils import timezone

from governance.kernel.errors import DomainError
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.events.services import verify_database
from governance.sweep import governance_sweep
from registry import services as registry
from registry.models import Artifact, Deprecation, Version
from reviews import selectors, services
from reviews.choices import ChangeStatus, CheckKind, CheckStatus
from reviews.models import Activation, ChangeRequest, CheckRun, EvaluationReport
from reviews.waivers import services as governance
from reviews.waivers.models import Waiver
from tests.reviews.conftest import PINS, make_artifact, people, publish

__all__ = ["people"]  # a fixture, imported for use here

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TRIES = 50


def _outcome(work: Callable[[], Any]) -> str:
    try:
        result = work()
        return f"ok:{getattr(result, 'pk', result)}"
    except DomainError as exc:
        return f"refused:{type(exc).__name__}:{exc.message}"
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the test
        return f"crash:{type(exc).__name__}:{exc}".strip()


def in_lockstep(workers: Sequence[Callable[[int], Any]], tries: int = TRIES) -> list[list[str]]:
    """Run each worker in its own forked process; at every try they all start together.

    ``workers[k](i)`` is worker k's part of try i. Returns each worker's outcomes, in order.
    """
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(len(workers), timeout=60)
    queue = context.Queue()

    def run(index: int, work: Callable[[int], Any]) -> None:
        outcomes = []
        try:
            for i in range(tries):
                try:
                    barrier.wait()
                except BrokenBarrierError:
                    outcomes.append("crash:the other process stopped")
                    break
                outcomes.append(_outcome(lambda: work(i)))  # noqa: B023 - called at once
        finally:
            connections.close_all()
            queue.put((index, outcomes))

    connections.close_all()  # children must not share the parent's socket
    processes = [
        context.Process(target=run, args=(index, work)) for index, work in enumerate(workers)
    ]
    for process in processes:
        process.start()
    results = dict(queue.get(timeout=600) for _ in processes)
    for process in processes:
        process.join(timeout=30)
    return [results[index] for index in range(len(workers))]


def crashes(results: list[list[str]]) -> list[str]:
    return [r for outcomes in results for r in outcomes if r.startswith("crash")]


def not_ok(results: list[list[str]]) -> list[str]:
    return [r for outcomes in results for r in outcomes if not r.startswith("ok:")]


def report(results: list[list[str]]) -> str:
    found = crashes(results)
    deadlocks = sum("deadlock detected" in r for r in found)
    return f"{len(found)} crashes ({deadlocks} deadlocks) in {TRIES} tries: {found[:2]}"


def approved_change(acme: Any, people: dict[str, Any], versions: list[Version]) -> ChangeRequest:
    """A cheap approved change: scorecards need no evidence and one check (pack verification),
    and the tenant's policy (``one_approval``) asks for one reviewer."""
    change = services.change_create(
        tenant=acme,
        actor=people["author"],
        title="Tune",
        rollback_plan="Go back",
        proposed=versions,
    )
    services.change_submit(change=change, actor=people["author"])
    for run in CheckRun.objects.filter(change=change, status=CheckStatus.PENDING):
        services.check_execute(run=run)
    services.approval_decide(change=change, actor=people["reviewer"], decision="approve")
    return change


@pytest.fixture
def two_prompts(acme: Any, people: dict[str, Any]) -> tuple[Artifact, Artifact]:
    registry.install_builtin_classes()
    return (
        make_artifact(acme, "prompt", "greet", owner=people["admin"]),
        make_artifact(acme, "prompt", "answer", owner=people["admin"]),
    )


def new_version(artifact: Artifact, tag: str) -> Version:
    if artifact.artifact_class.slug == "scorecard":
        return publish(artifact, data={"run": tag})
    return publish(artifact, text=f"Hello {{{{ customer }}}} ({tag}).", metadata=PINS)


def assert_log_consistent() -> None:
    result = verify_database()
    assert result.ok, result.line()


def test_evidence_on_two_changes_sharing_a_version(
    acme: Any, people: dict[str, Any], two_prompts: tuple[Artifact, Artifact]
) -> None:
    assert connection.vendor == "postgresql"
    greet, _ = two_prompts
    shared = publish(greet, impact="major", text="Hello {{ customer }}.", metadata=PINS)
    first, second = (
        services.change_create(
            tenant=acme, actor=people["author"], title=t, rollback_plan="Back", proposed=[shared]
        )
        for t in ("First", "Second")
    )

    def attach(change: ChangeRequest) -> Callable[[int], Any]:
        return lambda i: services.evidence_attach(
            change=change, actor=people["author"], version=shared, metrics={"accuracy": i}
        )

    results = in_lockstep([attach(first), attach(second)])
    assert not crashes(results), report(results)
    assert not not_ok(results), not_ok(results)[:3]
    assert EvaluationReport.objects.filter(version=shared).count() == 2 * TRIES
    assert Event.objects.filter(kind=EventKind.EVIDENCE_ATTACHED).count() == 2 * TRIES
    for change in (first, second):
        change.refresh_from_db()
        assert change.binding_sha256 == selectors.binding_hash(change)  # covers all 100 reports
    assert_log_consistent()


def publish_later(artifact: Artifact, i: int) -> Version:
    time.sleep(i * 0.004)
    return new_version(artifact, f"during {i}")


@pytest.fixture
def one_approval(acme: Any) -> None:
    services.approval_policy_update(
        tenant=acme,
        rules={"rules": [{"name": "Any change", "when": {}, "require": ["reviewer"]}]},
        reason="Lock-order tests: the fewest approvals",
        actor=None,
    )


def test_two_promotions_with_overlapping_artifacts_and_a_publish_during_them(
    acme: Any, people: dict[str, Any], one_approval: None
) -> None:
    """Three processes per try: two promotions of changes proposing versions of the same two
    artifacts (items in opposite orders) and a publish to one of those artifacts. The setup
    (100 approved changes) is shared by both scenarios to keep the test affordable."""
    registry.install_builtin_classes()
    admin = people["admin"]
    tries = []
    for i in range(TRIES):
        greet = make_artifact(acme, "scorecard", f"greet-{i}", owner=admin)
        answer = make_artifact(acme, "scorecard", f"answer-{i}", owner=admin)
        one = [new_version(greet, "a"), new_version(answer, "a")]
        two = [new_version(answer, "b"), new_version(greet, "b")]
        tries.append(
            (approved_change(acme, people, one), approved_change(acme, people, two), answer)
        )

    # The publisher starts a little later each try (0 to 200 ms), so some publishes land
    # inside the promotions' locks whatever their speed.
    results = in_lockstep(
        [
            lambda i: services.change_promote(change=tries[i][0], actor=admin),
            lambda i: services.change_promote(change=tries[i][1], actor=admin),
            lambda i: publish_later(tries[i][2], i),
        ]
    )
    assert not crashes(results), report(results)
    promotions = list(zip(results[0], results[1], strict=True))
    # The first to lock the artifacts wins; the other was sent back to review by it (its
    # approvals covered the versions it would replace) and is refused with a 409.
    for outcomes in promotions:
        assert sorted(o.split(":")[0] for o in outcomes) == ["ok", "refused"], outcomes
    assert all(o.startswith("refused:Conflict:") for o in not_ok(results)), not_ok(results)[:3]
    assert all(r.startswith("ok:") for r in results[2])  # every publish went through
    assert ChangeRequest.objects.filter(status=ChangeStatus.PROMOTED).count() == TRIES
    assert Event.objects.filter(kind=EventKind.CHANGE_REQUEST_PROMOTED).count() == TRIES
    assert Activation.objects.count() == 2 * TRIES
    for first, second, answer in tries:
        winner = first if ChangeRequest.objects.get(pk=first.pk).promoted_at else second
        for item in winner.items.all():
            artifact = Artifact.objects.get(pk=item.artifact_id)
            assert artifact.active_version_id == item.proposed_id
        ordinals = sorted(Version.objects.filter(artifact=answer).values_list("ordinal", flat=True))
        assert ordinals == [1, 2, 3]  # no number given twice
    assert Event.objects.filter(kind=EventKind.ARTIFACT_VERSION_PUBLISHED).count() == (
        Version.objects.count()
    )
    assert_log_consistent()


def test_switching_off_a_change_while_another_change_on_its_artifacts_is_promoted(
    acme: Any, people: dict[str, Any], one_approval: None
) -> None:
    """Two processes per try: the safety switch of a promoted change (a first promotion of
    two artifacts, from its page: ``change_switch_off``) and the promotion of an approved
    change proposing new versions of the same two artifacts (items in the other order)."""
    registry.install_builtin_classes()
    admin = people["admin"]
    tries = []
    for i in range(TRIES):
        greet = make_artifact(acme, "scorecard", f"greet-{i}", owner=admin)
        answer = make_artifact(acme, "scorecard", f"answer-{i}", owner=admin)
        first = approved_change(acme, people, [new_version(greet, "a"), new_version(answer, "a")])
        services.change_promote(change=first, actor=admin)
        later = approved_change(acme, people, [new_version(answer, "b"), new_version(greet, "b")])
        tries.append((first, later))
    events = Event.objects.count()

    results = in_lockstep(
        [
            lambda i: services.change_switch_off(change=tries[i][0], actor=admin, reason="halt"),
            lambda i: services.change_promote(change=tries[i][1], actor=admin),
        ]
    )
    assert not crashes(results), report(results)
    assert all(r.startswith("refused:Conflict:") for r in not_ok(results)), not_ok(results)[:3]
    switched = promoted = 0
    for i, (first, later) in enumerate(tries):
        outcomes = (results[0][i], results[1][i])
        # Whoever locks first wins: switched off, the other change was rebound (its approval
        # voided) and cannot be promoted; promoted first, nothing of the first is live.
        assert sorted(o.split(":")[0] for o in outcomes) == ["ok", "refused"], outcomes
        first.refresh_from_db()
        later.refresh_from_db()
        actives = set(
            Artifact.objects.filter(pk__in=first.items.values("artifact_id")).values_list(
                "active_version_id", flat=True
            )
        )
        if outcomes[0].startswith("ok:"):
            switched += 1
            assert first.status == ChangeStatus.ROLLED_BACK
            assert actives == {None}
            assert later.status == ChangeStatus.IN_REVIEW
            # one event per artifact switched off, each saying its old and new "Current"
            moved = [
                item
                for e in Event.objects.filter(
                    kind=EventKind.CHANGE_REQUEST_REBOUND, subject_id=str(later.pk)
                )
                for item in e.payload["items"]
            ]
            paths = sorted(i.artifact.path for i in selectors.items_of(later))
            assert sorted(m["artifact"] for m in moved) == paths
            assert all(m["to"] is None and m["from"] is not None for m in moved)
        else:
            promoted += 1
            assert first.status == ChangeStatus.PROMOTED
            assert later.status == ChangeStatus.PROMOTED
            assert actives == set(later.items.values_list("proposed_id", flat=True))
    assert switched + promoted == TRIES
    assert Event.objects.filter(kind=EventKind.ARTIFACT_DEACTIVATED).count() == 2 * switched
    assert Event.objects.count() > events
    assert_log_consistent()


def test_waiver_grant_during_the_sweep(
    acme: Any, people: dict[str, Any], two_prompts: tuple[Artifact, Artifact]
) -> None:
    greet, _ = two_prompts
    old = [new_version(greet, f"old {i}") for i in range(TRIES)]
    replacement = new_version(greet, "replacement")
    start = timezone.now() + timedelta(days=30)
    for i, version in enumerate(old):
        deprecation = registry.version_deprecate(
            version=version,
            replacement=replacement,
            reason="Superseded.",
            remove_after_days=7,
            actor=people["admin"],
        )
        # One removal falls due at each try's sweep.
        Deprecation.objects.filter(pk=deprecation.pk).update(
            remove_after=start + timedelta(hours=i)
        )

    def grant(i: int) -> Waiver:
        return governance.waiver_grant(
            tenant=acme,
            actor=people["admin"],
            check_kind=CheckKind.MODEL_PINS if i % 2 else CheckKind.OFFLINE_EVALUATION,
            owner=people["author"],
            artifacts=[greet],
            justification="The corpus is too small to judge accuracy.",
            mitigation="An agent reads every reply before it is sent.",
            expires_at=timezone.now() + timedelta(days=1),
        )

    results = in_lockstep(
        [grant, lambda i: governance_sweep(now=start + timedelta(hours=i, minutes=1))]
    )
    assert not crashes(results), report(results)
    assert not not_ok(results), not_ok(results)[:3]
    assert Waiver.objects.count() == TRIES
    assert sorted(Waiver.objects.values_list("number", flat=True)) == list(range(1, TRIES + 1))
    assert Deprecation.objects.filter(removed_at__isnull=True).count() == 0
    assert Event.objects.filter(kind=EventKind.VERSION_REMOVED).count() == TRIES
    assert Event.objects.filter(kind=EventKind.WAIVER_GRANTED).count() == TRIES
    assert_log_consistent()
