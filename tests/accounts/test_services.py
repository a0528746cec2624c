"""Services for tenants, users, memberships, roles and tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import selectors, services
from accounts.choices import Role
from accounts.models import ApiToken, Membership, RoleGrant, Tenant
from governance.errors import Conflict, DomainError, NotFound, PermissionDenied

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

    def test_rejects_duplicate_and_blank_name(self, acme):
        with pytest.raises(Conflict, match="already exists"):
            services.tenant_create(slug="acme", name="Again", actor=None)
        with pytest.raises(DomainError) as err:
            services.tenant_create(slug="new", name="  ", actor=None)
        assert err.value.field == "name"

    def test_only_platform_admin_may_create(self, acme, make_user):
        admin = make_user("a", acme="administrator")
        with pytest.raises(PermissionDenied):
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
        admin = make_user("boss", acme="administrator")
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
        with pytest.raises(PermissionDenied):
            services.role_grant(user=alice, role="reviewer", tenant=acme, actor=reviewer)
        with pytest.raises(PermissionDenied, match="globex"):
            services.role_grant(user=alice, role="reviewer", tenant=globex, actor=acme_admin)
        with pytest.raises(PermissionDenied):
            services.role_grant(user=alice, role="administrator", tenant=None, actor=acme_admin)
        assert not RoleGrant.objects.filter(user=alice).exists()

    def test_revoke_takes_effect_immediately_and_keeps_history(self, acme, make_user):
        admin = make_user("boss", acme="administrator")
        alice = make_user("alice", acme=["reviewer", "security_officer"])
        grant = services.role_revoke(
            user=alice, role="reviewer", tenant=acme, actor=admin, reason="left team"
        )
        assert grant.revoked_by == admin and grant.revoke_reason == "left team"
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
            services.role_revoke(user=alice, role="reviewer", tenant=acme, actor=None)

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

    def test_access_by_tenant(self, acme, globex, make_user):
        alice = make_user("alice", acme=["security_officer", "reviewer"], globex="member")
        rows = {row.tenant.slug: row.roles for row in selectors.access_by_tenant(alice)}
        assert rows == {"acme": ["reviewer", "security_officer"], "globex": []}


class TestTokens:
    def test_create_stores_only_digest(self, make_user):
        alice = make_user("alice")
        token, raw = services.token_create(user=alice, name="ci", actor=alice, expires_days=7)
        assert raw.startswith("gov_") and len(raw) > 40
        stored = ApiToken.objects.get(pk=token.pk)
        assert raw not in (stored.digest, stored.prefix) and stored.prefix == raw[:12]
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
        with pytest.raises(PermissionDenied):
            services.token_revoke(token=token, actor=mallory)
        with pytest.raises(PermissionDenied):
            services.token_create(user=alice, name="x", actor=mallory)
        revoked = services.token_revoke(token=token, actor=alice)
        assert revoked.state() == "revoked" and revoked.revoked_by == alice
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
