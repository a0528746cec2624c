"""Races on waivers and the governance sweep, in parallel processes against PostgreSQL.

Ten grants at once get ten distinct, gapless waiver numbers; two sweeps at once over the
same due waivers and deprecations notify each person once and remove each version once,
with one event per removal.
"""

from __future__ import annotations

import ast
import multiprocessing
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.events.services import verify_database
from governance.kernel.models import Notification
from governance.sweep import governance_sweep
from registry import services as registry
from registry.models import Deprecation
from reviews.choices import CheckKind
from reviews.waivers import services as governance
from reviews.waivers.models import Waiver
from tests.postgres.test_reviews import in_processes
from tests.reviews.conftest import make_artifact, people, publish

__all__ = ["people"]  # a fixture, imported for use here

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def start_together(count: int) -> Any:
    """A barrier the forked processes share, so their transactions really overlap."""
    return multiprocessing.get_context("fork").Barrier(count, timeout=30)


def grant(acme: Any, people: dict[str, Any], artifact: Any, days: int = 5) -> Waiver:
    return governance.waiver_grant(
        tenant=acme,
        actor=people["admin"],
        check_kind=CheckKind.OFFLINE_EVALUATION,
        owner=people["author"],
        artifacts=[artifact],
        justification="The corpus is too small to judge accuracy.",
        mitigation="An agent reads every reply before it is sent.",
        expires_at=timezone.now() + timedelta(days=days),
    )


def test_ten_concurrent_grants_get_ten_gapless_numbers(acme: Any, people: dict[str, Any]) -> None:
    assert connection.vendor == "postgresql"
    registry.install_builtin_classes()
    prompt = make_artifact(acme, "prompt", "refund-reply", owner=people["author"])
    barrier = start_together(10)

    def work() -> Waiver:
        barrier.wait()
        return grant(acme, people, prompt)

    results = in_processes(10, work)
    assert all(r.startswith("ok:") for r in results), results
    numbers = sorted(Waiver.objects.values_list("number", flat=True))
    assert numbers == list(range(1, 11))
    assert len(set(Waiver.objects.values_list("year", flat=True))) == 1
    assert Event.objects.filter(kind=EventKind.WAIVER_GRANTED).count() == 10
    assert verify_database().ok


def test_two_concurrent_sweeps_notify_once_and_remove_once(
    acme: Any, people: dict[str, Any]
) -> None:
    registry.install_builtin_classes()
    waivers, deprecations = [], []
    for i in range(6):
        prompt = make_artifact(acme, "prompt", f"reply-{i}", owner=people["author"])
        waivers.append(grant(acme, people, prompt, days=3 + i))
        old = publish(prompt, impact="major", text=f"Answer {{{{ customer }}}} ({i}).")
        new = publish(prompt, text=f"Answer {{{{ customer }}}} and thank them ({i}).")
        deprecations.append(
            registry.version_deprecate(
                version=old,
                replacement=new,
                reason="The new one thanks the customer.",
                remove_after_days=7,
                actor=people["admin"],
            )
        )
    later = timezone.now() + timedelta(days=10)  # every waiver expired, every grace period over
    barrier = start_together(2)

    def work() -> dict[str, int]:
        barrier.wait()
        return governance_sweep(now=later)

    results = in_processes(2, work)
    assert all(r.startswith("ok:") for r in results), results

    # The owner and both administrators of acme ("admin" and "multi"), once per waiver.
    for waiver in waivers:
        got = Notification.objects.filter(dedupe_key=f"waiver:{waiver.pk}:expired")
        assert sorted(got.values_list("user__username", flat=True)) == [
            "admin",
            "author",
            "multi",
        ]
    assert Notification.objects.filter(dedupe_key__endswith=":expired").count() == 18
    for deprecation in deprecations:
        deprecation.refresh_from_db()
        assert deprecation.removed_at == later
        assert (
            Event.objects.filter(
                kind=EventKind.VERSION_REMOVED, subject_id=str(deprecation.version_id)
            ).count()
            == 1
        )
    assert Deprecation.objects.filter(removed_at__isnull=True).count() == 0
    # What the two sweeps say they did adds up to what was done, nothing twice.
    said = [ast.literal_eval(r.removeprefix("ok:")) for r in results]
    assert sum(s["waiver_alerts"] for s in said) == 18
    assert sum(s["removed_versions"] for s in said) == 6
    assert verify_database().ok
