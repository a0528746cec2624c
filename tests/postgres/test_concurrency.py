"""Races that only a real PostgreSQL can show: many sessions granting at once."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection, connections
from django.utils import timezone

from accounts import selectors, services
from accounts.models import Membership, RoleGrant, Tenant, User
from governance.kernel.errors import Conflict, DomainError

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
        6,
        lambda: services.role_revoke(
            user=alice, role="reviewer", tenant=acme, actor=None, reason="left"
        ),
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


def _revoke_each_other(tenant: Tenant, a: User, b: User) -> Callable[[], object]:
    """Work for two threads: the first revokes b as a, the second a as b."""
    pairs = iter([(a, b), (b, a)])
    pick = threading.Lock()

    def work() -> object:
        with pick:
            actor, target = next(pairs)
        return services.role_revoke(
            user=target, role="administrator", tenant=tenant, actor=actor, reason="coup"
        )

    return work


def test_two_administrators_revoking_each_other_leave_one(acme, make_user):
    """Without the tenant lock both revocations see the other administrator and both pass."""
    for attempt in range(10):
        a = make_user(f"a{attempt}", acme="administrator")
        b = make_user(f"b{attempt}", acme="administrator")
        RoleGrant.objects.filter(tenant=acme, role="administrator").exclude(user__in=[a, b]).update(
            revoked_at=timezone.now(), revoke_reason="reset"
        )
        results = run_concurrently(2, _revoke_each_other(acme, a, b))
        successes = [r for r in results if isinstance(r, RoleGrant)]
        failures = [r for r in results if isinstance(r, DomainError)]
        assert len(successes) == 1, results
        assert len(failures) == 1, results
        left = RoleGrant.objects.filter(tenant=acme, role="administrator", revoked_at__isnull=True)
        assert left.count() == 1, attempt


def test_parallel_revocations_of_every_administrator_keep_one(acme, make_user):
    admins = [make_user(f"adm{i}", acme="administrator") for i in range(6)]
    queue = iter(admins)
    pick = threading.Lock()

    def revoke_one() -> object:
        with pick:
            target = next(queue)
        return services.role_revoke(
            user=target, role="administrator", tenant=acme, actor=None, reason="reorg"
        )

    results = run_concurrently(6, revoke_one)
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(refused) == 1, results
    assert "last administrator" in str(refused[0]), results
    assert len([r for r in results if isinstance(r, RoleGrant)]) == 5
    assert (
        RoleGrant.objects.filter(tenant=acme, role="administrator", revoked_at__isnull=True).count()
        == 1
    )


def _deactivate_each(*users: User) -> Callable[[], object]:
    """Work for one thread per user: each deactivates the next user in the list."""
    queue = iter(users)
    pick = threading.Lock()

    def work() -> object:
        with pick:
            target = next(queue)
        return services.user_set_active(user=target, active=False, actor=None, reason="left")

    return work


def test_two_deactivations_of_the_last_two_administrators_leave_one(acme, make_user):
    """Deactivation locks the tenants the user administers first, like role_revoke: without it
    both see the other still active and the tenant is left with no administrator."""
    for attempt in range(5):
        a = make_user(f"da{attempt}", acme="administrator")
        b = make_user(f"db{attempt}", acme="administrator")
        User.objects.filter(role_grants__tenant=acme, role_grants__role="administrator").exclude(
            pk__in=[a.pk, b.pk]
        ).update(is_active=False)
        results = run_concurrently(2, _deactivate_each(a, b))
        refused = [r for r in results if isinstance(r, Conflict)]
        assert len(refused) == 1, results
        assert "last administrator" in str(refused[0]), results
        assert User.objects.filter(pk__in=[a.pk, b.pk], is_active=True).count() == 1, attempt
