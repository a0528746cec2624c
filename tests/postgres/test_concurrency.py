"""Races that only a real PostgreSQL can show: many sessions granting at once."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection, connections

from accounts import selectors, services
from accounts.models import Membership, RoleGrant

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_concurrently(count: int, work: Callable[[], object]) -> list[object]:
    barrier = threading.Barrier(count)
    results: list[object] = []
    lock = threading.Lock()

    def target() -> None:
        try:
            barrier.wait(timeout=10)
            outcome: object = work()
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            outcome = exc
        finally:
            connections.close_all()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=target) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def test_simultaneous_grants_leave_exactly_one_active_grant(acme, make_user):
    assert connection.vendor == "postgresql"
    alice = make_user("alice")
    results = run_concurrently(
        8, lambda: services.role_grant(user=alice, role="reviewer", tenant=acme, actor=None)
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    created = [r for r in results if isinstance(r, tuple) and r[1]]
    assert len(created) >= 1
    assert RoleGrant.objects.filter(user=alice, revoked_at__isnull=True).count() == 1
    assert Membership.objects.filter(user=alice, removed_at__isnull=True).count() == 1
    assert {r[0].pk for r in results if isinstance(r, tuple)} == {
        RoleGrant.objects.get(user=alice).pk
    }


def test_simultaneous_revokes_revoke_once(acme, make_user):
    alice = make_user("alice", acme="reviewer")
    results = run_concurrently(
        6, lambda: services.role_revoke(user=alice, role="reviewer", tenant=acme, actor=None)
    )
    successes = [r for r in results if not isinstance(r, Exception)]
    failures = [r for r in results if isinstance(r, Exception)]
    assert len(successes) == 1
    assert all("does not hold" in str(f) for f in failures)
    assert selectors.roles_in_tenant(alice, acme) == set()


def test_database_constraint_blocks_a_second_active_grant(acme, make_user):
    """Even bypassing the service, the partial unique index refuses a duplicate."""
    from django.db import IntegrityError

    alice = make_user("alice", acme="reviewer")
    with pytest.raises(IntegrityError):
        RoleGrant.objects.create(user=alice, tenant=acme, role="reviewer")
