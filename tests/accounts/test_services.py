"""Services for tenants, users, memberships, roles and tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import selectors, services
from accounts.choices import Role
from accounts.models import ApiToken, Membership, RoleGrant, Tenant, User
from governance.kernel.errors import Conflict, DomainError, Forbidden, NotFound
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event

pytestmark = pytest.mark.django_db


class TestTenantCreate:
    def test_creates_with_creator(self, make_user):
        root = make_user("root")
        services.role_grant(user=root, role=Role.ADMINISTRATOR, tenant=None, actor=None)
        tenant = services.tenant_create(slug="initech", name="Initech", actor=root)
        assert Tenant.objects.get(slug="initech").created_by == root
        assert tenant.name == "Initech"

    @pytest.mark.parametrize("slug", ["", "Acme", "-acme", "acme-", "a" * 64, "ac me", "acmé"])
    def test_rejects_bad_slug(self, slug):
        with pytest.raises(DomainError) as err:
            services.tenant_create(slug=slug, name="X", actor=None)
        assert err.value.field == "slug"
        assert not Tenant.objects.exists()

    @pytest.mark.usefixtures("acme")
    def test_rejects_duplicate_and_blank_name(self):
        with pytest.raises(Conflict, match="already exists"):
            services.tenant_create(slug="acme", name="Again", actor=None)
        with pytest.raises(DomainError) as err:
            services.tenant_create(slug="new", name="  ", actor=None)
        assert err.value.field == "name"

    @pytest.mark.usefixtures("acme")
    def test_only_platform_admin_may_create(self, make_user):
        admin = make_user("a", acme="administrator")
        with pytest.raises(Forbidden):
            services.tenant_create(slug="other", name="Other", actor=admin)


class TestUserCreate:
    def test_password_validated_and_hashed(self):
        with pytest.raises(DomainError) as err:
            services.user_create(username="bob", password="123", actor=None)
        assert err.value.field == "password"
        user = services.user_create(username="bob", password="a-long-Passphrase-42", actor=None)
        assert user.check_password("a-long-Passphrase-42")
        assert "a-long-Passphrase-42" not in user.password

    def test_without_password_is_token_only(self):
        user = services.user_create(username="ci-bot", actor=None)
        assert not user.has_usable_password()

    def test_duplicate_and_bad_email(self, make_user):
        make_user("bob")
        with pytest.raises(Conflict):
            services.user_create(username="bob", actor=None)
        with pytest.raises(DomainError) as err:
            services.user_create(username="eve", email="not-an-email", actor=None)
        assert err.value.field == "email"


class TestRoles:
    def test_grant_records_who_and_when_and_makes_member(self, acme, make_user):
        admin = make_user("boss")
        services.role_grant(user=admin, role="administrator", tenant=None, actor=None)
        alice = make_user("alice")
        before = timezone.now()
        grant, created = services.role_grant(
            user=alice, role="reviewer", tenant=acme, actor=admin, reason="joins review team"
        )
        assert created
        assert (grant.granted_by, grant.reason, grant.revoked_at) == (
            admin,
            "joins review team",
            None,
        )
        assert grant.granted_at >= before
        assert selectors.is_member(alice, acme)
        assert selectors.roles_in_tenant(alice, acme) == {"reviewer"}

    def test_grant_is_idempotent(self, acme, make_user):
        alice = make_user("alice")
        first, created1 = services.role_grant(user=alice, role="reviewer", tenant=acme, actor=None)
        second, created2 = services.role_grant(user=alice, role="reviewer", tenant=acme, actor=None)
        assert (created1, created2) == (True, False)
        assert first.pk == second.pk
        assert RoleGrant.objects.filter(user=alice).count() == 1

    def test_roles_are_per_tenant(self, acme, globex, make_user):
        alice = make_user("alice", acme="reviewer")
        assert selectors.roles_in_tenant(alice, acme) == {"reviewer"}
        assert selectors.roles_in_tenant(alice, globex) == set()
        assert list(selectors.tenants_visible_to(alice)) == [acme]
        with pytest.raises(NotFound):
            selectors.tenant_for_user(alice, "globex")

    def test_unknown_role_names_field(self, acme, make_user):
        alice = make_user("alice")
        with pytest.raises(DomainError) as err:
            services.role_grant(user=alice, role="overlord", tenant=acme, actor=None)
        assert err.value.field == "role"
        assert "reviewer" in err.value.message
        assert not Membership.objects.filter(user=alice).exists()

    def test_platform_grant_only_administrator(self, make_user, acme, globex):
        alice = make_user("alice")
        with pytest.raises(DomainError, match="platform-wide"):
            services.role_grant(user=alice, role="reviewer", tenant=None, actor=None)
        services.role_grant(user=alice, role="administrator", tenant=None, actor=None)
        assert selectors.is_platform_admin(alice)
        assert selectors.roles_in_tenant(alice, globex) == {"administrator"}
        assert set(selectors.tenants_visible_to(alice)) == {acme, globex}

    def test_only_tenant_admin_may_grant(self, acme, globex, make_user):
        reviewer = make_user("rev", acme="reviewer")
        acme_admin = make_user("boss", acme="administrator")
        alice = make_user("alice")
        with pytest.raises(Forbidden):
            services.role_grant(user=alice, role="reviewer", tenant=acme, actor=reviewer)
        with pytest.raises(Forbidden, match="globex"):
            services.role_grant(user=alice, role="reviewer", tenant=globex, actor=acme_admin)
        with pytest.raises(Forbidden):
            services.role_grant(user=alice, role="administrator", tenant=None, actor=acme_admin)
        assert not RoleGrant.objects.filter(user=alice).exists()

    def test_revoke_takes_effect_immediately_and_keeps_history(self, acme, make_user):
        admin = make_user("boss", acme="administrator")
        alice = make_user("alice", acme=["reviewer", "security_officer"])
        grant = services.role_revoke(
            user=alice, role="reviewer", tenant=acme, actor=admin, reason="left team"
        )
        assert grant.revoked_by == admin
        assert grant.revoke_reason == "left team"
        assert selectors.roles_in_tenant(alice, acme) == {"security_officer"}
        # Re-granting is a new row; the old one stays as history.
        services.role_grant(user=alice, role="reviewer", tenant=acme, actor=admin)
        assert RoleGrant.objects.filter(user=alice, role="reviewer").count() == 2
        assert [
            g.revoked_at is None
            for g in selectors.grant_history(acme).filter(user=alice, role="reviewer")
        ] == [True, False]

    def test_revoke_missing_grant(self, acme, make_user):
        alice = make_user("alice", acme="member")
        with pytest.raises(NotFound, match="does not hold"):
            services.role_revoke(
                user=alice, role="reviewer", tenant=acme, actor=None, reason="cleanup"
            )

    def test_membership_remove_revokes_all_roles(self, acme, make_user):
        alice = make_user("alice", acme=["reviewer", "privacy_officer"])
        services.membership_remove(user=alice, tenant=acme, actor=None)
        assert selectors.roles_in_tenant(alice, acme) == set()
        assert not selectors.is_member(alice, acme)
        assert RoleGrant.objects.filter(user=alice, revoked_at__isnull=False).count() == 2

    def test_deactivated_user_has_no_roles(self, acme, make_user):
        alice = make_user("alice", acme="reviewer")
        alice.is_active = False
        alice.save()
        assert selectors.roles_in_tenant(alice, acme) == set()
        with pytest.raises(DomainError, match="deactivated"):
            services.role_grant(user=alice, role="administrator", tenant=acme, actor=None)

    @pytest.mark.usefixtures("acme", "globex")
    def test_access_by_tenant(self, make_user):
        alice = make_user("alice", acme=["security_officer", "reviewer"], globex="member")
        rows = {row.tenant.slug: row.roles for row in selectors.access_by_tenant(alice)}
        assert rows == {"acme": ["reviewer", "security_officer"], "globex": []}


class TestTokens:
    def test_create_stores_only_digest(self, make_user):
        alice = make_user("alice")
        token, raw = services.token_create(user=alice, name="ci", actor=alice, expires_days=7)
        assert raw.startswith("gov_")
        assert len(raw) > 40
        stored = ApiToken.objects.get(pk=token.pk)
        assert raw not in (stored.digest, stored.prefix)
        assert stored.prefix == raw[:12]
        assert selectors.token_by_raw(raw) == stored
        assert timedelta(days=6, hours=23) < stored.expires_at - timezone.now() <= timedelta(days=7)
        assert stored.state() == "active"

    @pytest.mark.parametrize("days", [0, -1, 10_000])
    def test_expiry_bounds(self, make_user, days):
        alice = make_user("alice")
        with pytest.raises(DomainError) as err:
            services.token_create(user=alice, name="ci", actor=None, expires_days=days)
        assert err.value.field == "expires_days"
        assert not ApiToken.objects.exists()

    def test_only_owner_revokes_once(self, make_user):
        alice, mallory = make_user("alice"), make_user("mallory")
        token, _ = services.token_create(user=alice, name="ci", actor=alice)
        with pytest.raises(Forbidden):
            services.token_revoke(token=token, actor=mallory)
        with pytest.raises(Forbidden):
            services.token_create(user=alice, name="x", actor=mallory)
        revoked = services.token_revoke(token=token, actor=alice)
        assert revoked.state() == "revoked"
        assert revoked.revoked_by == alice
        with pytest.raises(Conflict):
            services.token_revoke(token=token, actor=alice)

    def test_touch_writes_at_most_once_a_minute(self, make_user, django_assert_num_queries):
        alice = make_user("alice")
        token, _ = services.token_create(user=alice, name="ci", actor=None)
        now = timezone.now()
        with django_assert_num_queries(1):
            services.token_touch(token=token, now=now)
        with django_assert_num_queries(0):
            services.token_touch(token=token, now=now + timedelta(seconds=30))
        with django_assert_num_queries(1):
            services.token_touch(token=token, now=now + timedelta(seconds=90))


class TestGrantOnlyToMembers:
    """A tenant administrator can neither reach nor probe users outside the tenant."""

    def test_foreign_and_unknown_users_get_the_same_answer(self, acme, globex, make_user):
        boss = make_user("boss", acme="administrator")
        make_user("gina", globex="reviewer")
        make_user("loner")
        answers = []
        for username in ("gina", "ghost", "loner"):
            with pytest.raises(NotFound) as err:
                services.role_grant(user=username, role="reviewer", tenant=acme, actor=boss)
            answers.append((err.value.field, err.value.message.replace(username, "?")))
        assert answers == [("username", "No member '?' in 'acme'.")] * 3
        # Passing the user object instead of the name changes nothing.
        with pytest.raises(NotFound, match="No member 'gina' in 'acme'"):
            services.role_grant(
                user=User.objects.get(username="gina"), role="reviewer", tenant=acme, actor=boss
            )
        assert not RoleGrant.objects.filter(tenant=acme).exclude(user=boss).exists()
        assert set(
            Membership.objects.filter(tenant=acme).values_list("user__username", flat=True)
        ) == {"boss"}

    def test_revoke_of_a_foreign_user_reads_like_an_unknown_one(self, acme, globex, make_user):
        boss = make_user("boss", acme="administrator")
        make_user("gina", globex="reviewer")
        for username in ("gina", "ghost"):
            with pytest.raises(NotFound, match=f"No member '{username}' in 'acme'"):
                services.role_revoke(
                    user=username, role="reviewer", tenant=acme, actor=boss, reason="x"
                )

    def test_tenant_admin_grants_to_a_member_by_name(self, acme, make_user):
        boss = make_user("boss", acme="administrator")
        alice = make_user("alice", acme="member")
        grant, created = services.role_grant(user="alice", role="reviewer", tenant=acme, actor=boss)
        assert created
        assert grant.user == alice
        assert grant.granted_by == boss

    def test_only_a_platform_admin_adds_members(self, acme, make_user):
        boss = make_user("boss", acme="administrator")
        root = make_user("root")
        services.role_grant(user=root, role="administrator", tenant=None, actor=None)
        alice = make_user("alice")
        with pytest.raises(Forbidden, match="platform administrator"):
            services.membership_add(user=alice, tenant=acme, actor=boss)
        assert not selectors.is_member(alice, acme)
        # A platform administrator brings a new user in by granting them a role.
        services.role_grant(user="alice", role="reviewer", tenant=acme, actor=root)
        assert selectors.is_member(alice, acme)


class TestRevokeReasonAndLastAdministrator:
    @pytest.mark.parametrize("reason", ["", "   ", None])
    def test_revoke_needs_a_reason(self, acme, make_user, reason):
        alice = make_user("alice", acme="reviewer")
        before = Event.objects.count()
        with pytest.raises(DomainError) as err:
            services.role_revoke(
                user=alice, role="reviewer", tenant=acme, actor=None, reason=reason
            )
        assert (err.value.field, err.value.message) == ("reason", "The reason is required.")
        assert selectors.roles_in_tenant(alice, acme) == {"reviewer"}
        assert Event.objects.count() == before

    def test_reason_is_stored_and_in_the_event(self, acme, make_user):
        boss = make_user("boss", acme="administrator")
        alice = make_user("alice", acme="reviewer")
        grant = services.role_revoke(
            user=alice, role="reviewer", tenant=acme, actor=boss, reason="  left the team "
        )
        assert RoleGrant.objects.get(pk=grant.pk).revoke_reason == "left the team"
        event = Event.objects.filter(kind=EventKind.ROLE_REVOKED).get()
        assert event.payload["reason"] == "left the team"
        assert event.actor == boss

    def test_the_last_administrator_grant_stays(self, acme, make_user):
        boss = make_user("boss", acme="administrator")
        for actor in (boss, None):
            with pytest.raises(Conflict) as err:
                services.role_revoke(
                    user=boss, role="administrator", tenant=acme, actor=actor, reason="bye"
                )
            assert err.value.field == "role"
            assert "last administrator of 'acme'" in err.value.message
        with pytest.raises(Conflict, match="last administrator"):
            services.membership_remove(user=boss, tenant=acme, actor=None)
        assert selectors.roles_in_tenant(boss, acme) == {"administrator"}
        assert selectors.is_member(boss, acme)
        # With a second administrator, either may go.
        make_user("deputy", acme="administrator")
        services.role_revoke(user=boss, role="administrator", tenant=acme, actor=boss, reason="bye")
        assert list(
            RoleGrant.objects.filter(
                tenant=acme, role="administrator", revoked_at__isnull=True
            ).values_list("user__username", flat=True)
        ) == ["deputy"]

    def test_platform_administrators_do_not_count_as_the_tenants_administrator(
        self, acme, make_user
    ):
        boss = make_user("boss", acme="administrator")
        root = make_user("root")
        services.role_grant(user=root, role="administrator", tenant=None, actor=None)
        with pytest.raises(Conflict, match="last administrator"):
            services.role_revoke(
                user=boss, role="administrator", tenant=acme, actor=root, reason="bye"
            )
