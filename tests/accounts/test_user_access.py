"""Deactivation, admin groups/permissions and createsuperuser go through services with events.

A tenant keeps an active administrator: deactivating the last one is refused (admin, CLI,
service) by the same rule as revoking the grant.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import CommandError, call_command
from django.test import Client

from accounts import selectors, services
from accounts.models import RoleGrant, Tenant, User
from governance.kernel.errors import Conflict, DomainError, Forbidden
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from tests.accounts.test_admin import user_form
from tests.cli import refused

pytestmark = pytest.mark.django_db


def events(kind: str) -> list[Event]:
    return list(Event.objects.filter(kind=kind).order_by("seq"))


@pytest.fixture
def root(make_user: Any) -> User:
    user = make_user("root")
    user.is_staff = user.is_superuser = True
    user.save()
    return user


def change_url(user: User) -> str:
    return f"/admin/accounts/user/{user.pk}/change/"


class TestUserSetActive:
    def test_deactivate_and_reactivate_record_old_new_and_reason(
        self, acme: Tenant, make_user: Any
    ) -> None:
        alice = make_user("alice", acme="reviewer")
        services.user_set_active(user=alice, active=False, actor=None, reason="left the company")
        alice.refresh_from_db()
        assert not alice.is_active
        assert selectors.roles_in_tenant(alice, acme) == set()
        services.user_set_active(user=alice, active=False, actor=None, reason="again")
        services.user_set_active(user=alice, active=True, actor=None, reason="came back")
        assert [
            (e.payload["username"], e.payload["old"], e.payload["new"], e.payload["reason"])
            for e in events(EventKind.USER_ACTIVE_CHANGED)
        ] == [("alice", True, False, "left the company"), ("alice", False, True, "came back")]

    @pytest.mark.usefixtures("acme")
    def test_needs_a_reason_and_a_platform_administrator(self, make_user: Any) -> None:
        alice = make_user("alice")
        tenant_admin = make_user("tadmin", acme="administrator")
        with pytest.raises(DomainError) as err:
            services.user_set_active(user=alice, active=False, actor=None, reason="  ")
        assert err.value.field == "reason"
        with pytest.raises(Forbidden):
            services.user_set_active(user=alice, active=False, actor=tenant_admin, reason="x")
        alice.refresh_from_db()
        assert alice.is_active
        assert not events(EventKind.USER_ACTIVE_CHANGED)

    @pytest.mark.usefixtures("acme", "globex")
    def test_the_last_administrator_of_a_tenant_cannot_be_deactivated(self, make_user: Any) -> None:
        boss = make_user("boss", acme="administrator", globex="administrator")
        make_user("deputy", acme="administrator")
        with pytest.raises(Conflict) as err:
            services.user_set_active(user=boss, active=False, actor=None, reason="left")
        assert err.value.field == "is_active"
        assert "last administrator of 'globex'" in str(err.value)
        boss.refresh_from_db()
        assert boss.is_active
        assert not events(EventKind.USER_ACTIVE_CHANGED)

    def test_a_deactivated_administrator_does_not_count_for_the_rule(
        self, acme: Tenant, make_user: Any
    ) -> None:
        """One rule for revoke and deactivate: only active administrators keep a tenant run."""
        a = make_user("a", acme="administrator")
        b = make_user("b", acme="administrator")
        services.user_set_active(user=a, active=False, actor=None, reason="left")
        with pytest.raises(Conflict):
            services.user_set_active(user=b, active=False, actor=None, reason="left too")
        with pytest.raises(Conflict):
            services.role_revoke(
                user=b, role="administrator", tenant=acme, actor=None, reason="reorg"
            )
        assert User.objects.get(pk=b.pk).is_active
        assert RoleGrant.objects.filter(user=b, revoked_at__isnull=True).exists()

    def test_a_platform_administrator_cannot_deactivate_a_superuser(
        self, root: User, make_user: Any
    ) -> None:
        platform = make_user("platform")
        services.role_grant(user=platform, role="administrator", tenant=None, actor=None)
        with pytest.raises(Forbidden):
            services.user_set_active(user=root, active=False, actor=platform, reason="coup")
        assert User.objects.get(pk=root.pk).is_active


class TestAdminUserForm:
    def test_deactivating_in_the_admin_records_the_event(
        self, client: Client, root: User, acme: Tenant, make_user: Any
    ) -> None:
        alice = make_user("alice", acme="reviewer")
        client.force_login(root)
        resp = client.post(
            change_url(alice), user_form(alice, is_active=False, change_reason="left")
        )
        assert resp.status_code == 302, resp.content.decode()[:2000]
        assert not User.objects.get(pk=alice.pk).is_active
        [event] = events(EventKind.USER_ACTIVE_CHANGED)
        assert event.actor_id == root.pk
        assert event.payload == {"username": "alice", "old": True, "new": False, "reason": "left"}

    def test_deactivating_needs_a_reason(self, client: Client, root: User, make_user: Any) -> None:
        alice = make_user("alice")
        client.force_login(root)
        resp = client.post(change_url(alice), user_form(alice, is_active=False))
        assert resp.status_code == 200
        assert "Say why active, staff or superuser status" in resp.content.decode()
        assert User.objects.get(pk=alice.pk).is_active
        assert not events(EventKind.USER_ACTIVE_CHANGED)

    def test_the_last_administrator_is_refused_with_the_reason_and_nothing_saved(
        self, client: Client, root: User, acme: Tenant, make_user: Any
    ) -> None:
        boss = make_user("boss", acme="administrator")
        client.force_login(root)
        resp = client.post(
            change_url(boss),
            user_form(boss, is_active=False, email="new@example.com", change_reason="left"),
            follow=True,
        )
        assert resp.status_code == 200
        html = resp.content.decode().replace("&#x27;", "'")
        assert "'boss' is the last administrator of 'acme'" in html
        boss.refresh_from_db()
        assert boss.is_active
        assert boss.email != "new@example.com"  # the whole save rolled back
        assert not events(EventKind.USER_ACTIVE_CHANGED)

    def test_groups_and_permissions_change_through_the_service(
        self, client: Client, root: User, make_user: Any
    ) -> None:
        alice = make_user("alice")
        auditors = Group.objects.create(name="auditors")
        view_user = Permission.objects.get(codename="view_user")
        client.force_login(root)
        form = user_form(alice, change_reason="audit access")
        form.update({"groups": [str(auditors.pk)], "user_permissions": [str(view_user.pk)]})
        resp = client.post(change_url(alice), form)
        assert resp.status_code == 302, resp.content.decode()[:2000]
        assert list(alice.groups.all()) == [auditors]
        assert list(alice.user_permissions.all()) == [view_user]
        [event] = events(EventKind.USER_ADMIN_PERMISSIONS_CHANGED)
        assert event.actor_id == root.pk
        assert event.payload == {
            "username": "alice",
            "old_groups": [],
            "new_groups": ["auditors"],
            "old_permissions": [],
            "new_permissions": ["accounts.view_user"],
            "reason": "audit access",
        }
        # Saving again unchanged records nothing; a change without a reason is refused.
        client.post(change_url(alice), form)
        assert len(events(EventKind.USER_ADMIN_PERMISSIONS_CHANGED)) == 1
        form.update({"groups": [], "change_reason": ""})
        resp = client.post(change_url(alice), form)
        assert resp.status_code == 200
        assert list(alice.groups.all()) == [auditors]

    def test_staff_who_is_not_superuser_cannot_change_groups_or_permissions(
        self, client: Client, make_user: Any
    ) -> None:
        clerk = make_user("clerk")
        clerk.is_staff = True
        clerk.save()
        services.role_grant(user=clerk, role="administrator", tenant=None, actor=None)
        clerk.user_permissions.add(
            *Permission.objects.filter(codename__in=["view_user", "change_user"])
        )
        alice = make_user("alice")
        client.force_login(clerk)
        form = user_form(alice, change_reason="please")
        form["user_permissions"] = [str(Permission.objects.get(codename="delete_user").pk)]
        client.post(change_url(alice), form)
        assert not alice.user_permissions.exists()
        assert not events(EventKind.USER_ADMIN_PERMISSIONS_CHANGED)
        with pytest.raises(Forbidden):
            services.user_set_admin_permissions(
                user=alice, groups=[], permissions=[], actor=clerk, reason="x"
            )


class TestCli:
    @pytest.mark.usefixtures("acme")
    def test_active_off_and_on(self, make_user: Any) -> None:
        make_user("alice", acme="reviewer")
        out = io.StringIO()
        call_command("accounts", "active", "alice", "off", "--reason", "left", stdout=out)
        assert out.getvalue().strip() == "alice is deactivated"
        assert not User.objects.get(username="alice").is_active
        [event] = events(EventKind.USER_ACTIVE_CHANGED)
        assert event.actor_id is None
        assert event.payload["reason"] == "left"

    @pytest.mark.usefixtures("acme")
    def test_active_off_refuses_the_last_administrator(self, make_user: Any) -> None:
        make_user("boss", acme="administrator")
        assert "last administrator of 'acme'" in refused(
            "accounts", "active", "boss", "off", "--reason", "left"
        )
        assert User.objects.get(username="boss").is_active
        assert not events(EventKind.USER_ACTIVE_CHANGED)


class TestCreatesuperuser:
    def test_noinput_goes_through_the_services(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-Long-passphrase-42")
        out = io.StringIO()
        call_command(
            "createsuperuser",
            "--noinput",
            "--username",
            "ops",
            "--email",
            "ops@example.com",
            stdout=out,
        )
        assert "Superuser created successfully." in out.getvalue()
        ops = User.objects.get(username="ops")
        assert ops.is_staff
        assert ops.is_superuser
        assert ops.is_active
        assert ops.check_password("a-Long-passphrase-42")
        kinds = [e.kind for e in Event.objects.filter(subject_id=str(ops.pk)).order_by("seq")]
        assert kinds == [
            EventKind.USER_CREATED,
            EventKind.USER_STAFF_CHANGED,
            EventKind.USER_SUPERUSER_CHANGED,
        ]
        staff = events(EventKind.USER_STAFF_CHANGED)[0]
        assert staff.actor_id is None
        assert staff.payload["reason"] == "created with manage.py createsuperuser"

    def test_a_taken_username_is_one_line_and_writes_nothing(self, make_user: Any) -> None:
        make_user("ops")
        before = Event.objects.count()
        with pytest.raises(CommandError, match="already taken"):
            call_command("createsuperuser", "--noinput", "--username", "ops", "--email", "")
        assert Event.objects.count() == before
        assert not User.objects.get(username="ops").is_superuser


def test_revoke_action_with_a_blank_reason_shows_only_the_error(
    client: Client, root: User, acme: Tenant, make_user: Any
) -> None:
    make_user("boss", acme="administrator")
    make_user("alice", acme="reviewer")
    make_user("bob", acme="reviewer")
    grants = RoleGrant.objects.filter(role="reviewer")
    client.force_login(root)
    form = {"action": "revoke_selected", "_selected_action": [str(g.pk) for g in grants]}
    resp = client.post("/admin/accounts/rolegrant/", {**form, "reason": "  "}, follow=True)
    shown = [str(m) for m in resp.context["messages"]]
    assert [m.lower() for m in shown] == ["reason: the reason is required."]
    assert not RoleGrant.objects.filter(revoked_at__isnull=False).exists()
    assert not events(EventKind.ROLE_REVOKED)
    resp = client.post("/admin/accounts/rolegrant/", {**form, "reason": "left"}, follow=True)
    assert [str(m) for m in resp.context["messages"]] == ["Revoked 2 grant(s)."]
    assert len(events(EventKind.ROLE_REVOKED)) == 2
