"""Admin edits of tenants and users go through the services: one event each, old and new values."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts import services
from accounts.models import Tenant, User
from governance.kernel.errors import DomainError, Forbidden
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event

pytestmark = pytest.mark.django_db


def events(kind: str) -> list[Event]:
    return list(Event.objects.filter(kind=kind).order_by("seq"))


@pytest.fixture
def root(make_user: Any) -> User:
    user = make_user("root")
    user.is_staff = user.is_superuser = True
    user.save()
    return user


def user_form(user: User, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "last_login_0": "",
        "last_login_1": "",
        "change_reason": "",
    }
    flags = {"is_active": user.is_active, "is_staff": user.is_staff}
    flags["is_superuser"] = user.is_superuser
    flags.update({k: v for k, v in changes.items() if k.startswith("is_")})
    data.update({k: "on" for k, v in flags.items() if v})
    data.update({k: v for k, v in changes.items() if not k.startswith("is_")})
    return data


class TestTenantRename:
    def test_admin_rename_records_one_event_with_old_and_new(
        self, client: Client, root: User, acme: Tenant
    ) -> None:
        client.force_login(root)
        resp = client.post(
            f"/admin/accounts/tenant/{acme.pk}/change/",
            {"name": "Acme Holdings", "change_reason": "legal name"},
        )
        assert resp.status_code == 302, resp.content.decode()[:2000]
        assert Tenant.objects.get(pk=acme.pk).name == "Acme Holdings"
        [event] = events(EventKind.TENANT_RENAMED)
        assert (event.actor, event.tenant) == (root, acme)
        assert event.payload == {
            "slug": "acme",
            "old_name": "Acme Corporation",
            "new_name": "Acme Holdings",
            "reason": "legal name",
        }
        # Saving again unchanged writes nothing.
        client.post(f"/admin/accounts/tenant/{acme.pk}/change/", {"name": "Acme Holdings"})
        assert len(events(EventKind.TENANT_RENAMED)) == 1

    def test_service_rules(self, acme: Tenant, make_user: Any) -> None:
        with pytest.raises(DomainError) as err:
            services.tenant_rename(tenant=acme, name="  ", actor=None)
        assert err.value.field == "name"
        reviewer = make_user("rev", acme="reviewer")
        with pytest.raises(Forbidden):
            services.tenant_rename(tenant=acme, name="Mine", actor=reviewer)
        boss = make_user("boss", acme="administrator")
        services.tenant_rename(tenant=acme, name="Acme Ltd", actor=boss, reason="rebrand")
        assert Tenant.objects.get(pk=acme.pk).name == "Acme Ltd"
        [event] = events(EventKind.TENANT_RENAMED)
        assert (event.actor, event.payload["old_name"], event.payload["reason"]) == (
            boss,
            "Acme Corporation",
            "rebrand",
        )


class TestUserFlags:
    def test_admin_superuser_and_staff_changes_record_one_event_each(
        self, client: Client, root: User, make_user: Any
    ) -> None:
        alice = make_user("alice")
        client.force_login(root)
        url = f"/admin/accounts/user/{alice.pk}/change/"
        resp = client.post(
            url, user_form(alice, is_staff=True, is_superuser=True, change_reason="on call")
        )
        assert resp.status_code == 302, resp.content.decode()[:3000]
        alice.refresh_from_db()
        assert alice.is_staff
        assert alice.is_superuser
        [staff] = events(EventKind.USER_STAFF_CHANGED)
        [superuser] = events(EventKind.USER_SUPERUSER_CHANGED)
        for event in (staff, superuser):
            assert event.actor == root
            assert event.payload == {
                "username": "alice",
                "old": False,
                "new": True,
                "reason": "on call",
            }
        # An unrelated edit records nothing more.
        client.post(url, user_form(alice, email="alice@new.example"))
        assert User.objects.get(pk=alice.pk).email == "alice@new.example"
        assert len(events(EventKind.USER_STAFF_CHANGED)) == 1
        assert len(events(EventKind.USER_SUPERUSER_CHANGED)) == 1

    def test_admin_needs_a_reason_for_a_flag_change(
        self, client: Client, root: User, make_user: Any
    ) -> None:
        alice = make_user("alice")
        client.force_login(root)
        resp = client.post(
            f"/admin/accounts/user/{alice.pk}/change/", user_form(alice, is_superuser=True)
        )
        assert resp.status_code == 200
        assert "Say why active, staff or superuser status, groups or permissions change." in (
            resp.content.decode()
        )
        assert not User.objects.get(pk=alice.pk).is_superuser
        assert not events(EventKind.USER_SUPERUSER_CHANGED)

    def test_staff_who_is_not_superuser_cannot_raise_anyone(
        self, client: Client, make_user: Any
    ) -> None:
        from django.contrib.auth.models import Permission

        clerk = make_user("clerk")
        clerk.is_staff = True
        clerk.save()
        clerk.user_permissions.add(
            *Permission.objects.filter(codename__in=["view_user", "change_user"])
        )
        alice = make_user("alice")
        client.force_login(clerk)
        client.post(
            f"/admin/accounts/user/{alice.pk}/change/",
            user_form(alice, is_superuser=True, is_staff=True, change_reason="please"),
        )
        alice.refresh_from_db()
        assert not alice.is_superuser
        assert not alice.is_staff
        assert not events(EventKind.USER_SUPERUSER_CHANGED)
        with pytest.raises(Forbidden):
            services.user_set_superuser(user=alice, is_superuser=True, actor=clerk, reason="x")
        with pytest.raises(Forbidden):
            services.user_set_staff(user=alice, is_staff=True, actor=clerk, reason="x")

    def test_services_need_a_reason_and_skip_no_ops(self, make_user: Any) -> None:
        alice = make_user("alice")
        with pytest.raises(DomainError) as err:
            services.user_set_staff(user=alice, is_staff=True, actor=None, reason=" ")
        assert err.value.field == "reason"
        services.user_set_staff(user=alice, is_staff=True, actor=None, reason="ops")
        services.user_set_staff(user=alice, is_staff=True, actor=None, reason="again")
        assert [e.payload["new"] for e in events(EventKind.USER_STAFF_CHANGED)] == [True]


class TestAdminGoesThroughServices:
    def test_adding_a_user_records_user_created(self, client: Client, root: User) -> None:
        client.force_login(root)
        resp = client.post(
            "/admin/accounts/user/add/",
            {
                "username": "newbie",
                "usable_password": "true",
                "password1": "a long enough passphrase 42",
                "password2": "a long enough passphrase 42",
            },
        )
        assert resp.status_code == 302, resp.content.decode()[:3000]
        newbie = User.objects.get(username="newbie")
        assert newbie.check_password("a long enough passphrase 42")
        [event] = events(EventKind.USER_CREATED)
        assert (event.actor, event.payload["username"], event.payload["password_login"]) == (
            root,
            "newbie",
            True,
        )

    def test_revoke_action_needs_a_reason_and_records_it(
        self, client: Client, root: User, acme: Tenant, make_user: Any
    ) -> None:
        from accounts.models import RoleGrant

        make_user("boss", acme="administrator")
        make_user("alice", acme="reviewer")
        grant = RoleGrant.objects.get(user__username="alice")
        client.force_login(root)
        form = {"action": "revoke_selected", "_selected_action": [str(grant.pk)]}
        resp = client.post("/admin/accounts/rolegrant/", form, follow=True)
        assert "Reason: The reason is required." in resp.content.decode()
        assert RoleGrant.objects.get(pk=grant.pk).revoked_at is None
        client.post("/admin/accounts/rolegrant/", {**form, "reason": "left"}, follow=True)
        grant.refresh_from_db()
        assert (grant.revoked_by, grant.revoke_reason) == (root, "left")
        [event] = events(EventKind.ROLE_REVOKED)
        assert event.payload["reason"] == "left"
