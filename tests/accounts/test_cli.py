"""``manage.py accounts`` and ``seed_demo``."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from accounts import selectors
from accounts.models import ApiToken, Membership, RoleGrant, Tenant, User
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from tests.conftest import subprocess_database_url

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, stdin: str | None = None) -> str:
    """The command's stdout; a refusal (exit status 2, one ``error:`` line) as a CommandError."""
    out, err = io.StringIO(), io.StringIO()
    old = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        call_command("accounts", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        if exc.code != 2:
            pytest.fail(f"the command exited with status {exc.code!r}, not 2 (a refusal)")
        raise CommandError(err.getvalue().strip().removeprefix("error: ")) from exc
    finally:
        sys.stdin = old
    return out.getvalue()


@pytest.mark.django_db
class TestAccountsCommand:
    def test_tenant_add_and_add_user_with_roles(self):
        assert (
            run("tenant-add", "acme", "--name", "Acme Corp") == "Created tenant acme (Acme Corp)\n"
        )
        run("tenant-add", "globex", "--name", "Globex")
        run(
            "add-user",
            "alice",
            "--email",
            "alice@example.com",
            "--password-stdin",
            "--role",
            "reviewer",
            "--tenant",
            "acme",
            "--role",
            "administrator",
            "--tenant",
            "globex",
            "--member",
            "globex",
            stdin="correct horse battery\n",
        )
        alice = User.objects.get(username="alice")
        assert alice.email == "alice@example.com"
        assert alice.check_password("correct horse battery")
        assert selectors.roles_in_tenant(alice, Tenant.objects.get(slug="acme")) == {"reviewer"}
        assert selectors.roles_in_tenant(alice, Tenant.objects.get(slug="globex")) == {
            "administrator"
        }
        assert RoleGrant.objects.filter(user=alice, granted_by__isnull=True).count() == 2

    @pytest.mark.usefixtures("acme")
    def test_grant_revoke_and_list(self, make_user):
        make_user("bob")
        assert run(
            "grant", "bob", "security_officer", "--tenant", "acme", "--reason", "on call"
        ) == ("Granted security_officer to bob in acme\n")
        assert "Already held" in run("grant", "bob", "security_officer", "--tenant", "acme")
        assert "bob\tacme: security_officer" in run("list")
        assert (
            run("revoke", "bob", "security_officer", "--tenant", "acme", "--reason", "rota")
            == "Revoked security_officer from bob in acme\n"
        )
        assert not RoleGrant.objects.filter(user__username="bob", revoked_at__isnull=True).exists()
        assert "bob\tacme: member" in run("list")
        run("grant", "bob", "administrator", "--platform")
        assert "bob\t*: administrator" in run("list")

    def test_token_prints_only_the_token_and_it_works(self, make_user, api):
        make_user("ci-bot")
        out = run("token", "ci-bot", "--expires-days", "3")
        raw = out.strip()
        assert out == raw + "\n"
        assert raw.startswith("gov_")
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        assert api.get("/api/v1/me/").json()["username"] == "ci-bot"
        token = ApiToken.objects.get()
        assert run("token-revoke", token.prefix) == f"Revoked token {token.prefix}… of ci-bot\n"
        assert api.get("/api/v1/me/").status_code == 401

    @pytest.mark.usefixtures("acme")
    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["grant", "ghost", "reviewer", "--tenant", "acme"], "username: No user 'ghost'."),
            (["grant", "bob", "overlord", "--tenant", "acme"], "role: Unknown role 'overlord'"),
            (["grant", "bob", "reviewer", "--tenant", "nowhere"], "tenant: No tenant 'nowhere'."),
            (
                ["grant", "bob", "reviewer", "--platform"],
                "role: 'reviewer' cannot be granted platform-wide.",
            ),
            (
                ["revoke", "bob", "reviewer", "--tenant", "acme", "--reason", "x"],
                "role: 'bob' does not hold the role 'reviewer'",
            ),
            (
                ["revoke", "bob", "reviewer", "--tenant", "acme"],
                "reason: The reason is required.",
            ),
            (["token", "ghost"], "username: No user 'ghost'."),
            (["token", "bob", "--expires-days", "0"], "expires_days: Expiry must be between 1 and"),
            (["token-revoke", "gov_zzzz"], "token: no token starts with 'gov_zzzz'"),
            (["tenant-add", "acme", "--name", "Again"], "slug: Tenant 'acme' already exists."),
            (["tenant-add", "Bad Slug", "--name", "X"], "slug: Use 1-63 lowercase"),
            (["add-user", "carol", "--role", "reviewer"], "each --role needs its own --tenant"),
            (
                ["add-user", "carol", "--role", "reviewer", "--tenant", "nowhere"],
                "tenant: No tenant 'nowhere'.",
            ),
            (
                ["add-user", "carol", "--role", "boss", "--tenant", "acme"],
                "role: Unknown role 'boss'",
            ),
            (["add-user", "bob"], "username: User 'bob' already exists."),
        ],
    )
    def test_bad_input_is_one_clear_error_and_writes_nothing(self, make_user, args, message):
        make_user("bob", acme="member")
        counts = (
            User.objects.count(),
            RoleGrant.objects.count(),
            Membership.objects.count(),
            Tenant.objects.count(),
        )
        with pytest.raises(CommandError) as err:
            run(*args)
        assert str(err.value).startswith(message)
        assert "\n" not in str(err.value)
        assert counts == (
            User.objects.count(),
            RoleGrant.objects.count(),
            Membership.objects.count(),
            Tenant.objects.count(),
        )
        assert not User.objects.filter(username="carol").exists()


@pytest.mark.usefixtures("acme")
@pytest.mark.django_db(transaction=True)
def test_cli_exit_code_and_single_stderr_line():
    env = {**os.environ, "DATABASE_URL": subprocess_database_url()}
    proc = subprocess.run(
        [sys.executable, "manage.py", "accounts", "grant", "ghost", "reviewer", "--tenant", "acme"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == ["error: username: No user 'ghost'."]


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_prints_logins():
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    first = (
        User.objects.count(),
        RoleGrant.objects.count(),
        Membership.objects.count(),
        Tenant.objects.count(),
    )
    call_command("seed_demo", "--quiet-logins", stdout=io.StringIO())
    assert first == (
        User.objects.count(),
        RoleGrant.objects.count(),
        Membership.objects.count(),
        Tenant.objects.count(),
    )
    assert set(Tenant.objects.values_list("slug", flat=True)) == {"acme", "globex", "platform"}
    text = out.getvalue()
    assert "acme-reviewer    acme-reviewer-demo" in text
    reviewer = User.objects.get(username="acme-reviewer")
    assert reviewer.check_password("acme-reviewer-demo")
    acme = Tenant.objects.get(slug="acme")
    held = {
        role
        for u in User.objects.all()
        for role in selectors.roles_in_tenant(u, acme)
        if not u.is_superuser
    }
    assert held == {"reviewer", "administrator", "privacy_officer", "security_officer"}
    assert selectors.is_platform_admin(User.objects.get(username="platform-admin"))


class TestStaffFlagFromTheCli:
    @pytest.mark.usefixtures("db")
    def test_add_user_with_staff_records_the_event(self):
        assert run("add-user", "opsy", "--staff") == "Created user opsy\n"
        assert User.objects.get(username="opsy").is_staff
        [event] = Event.objects.filter(kind=EventKind.USER_STAFF_CHANGED)
        assert event.actor is None
        assert event.payload == {
            "username": "opsy",
            "old": False,
            "new": True,
            "reason": "created with --staff",
        }

    def test_staff_on_and_off_with_a_reason(self, make_user):
        make_user("bob")
        assert run("staff", "bob", "on", "--reason", "runs backups") == (
            "bob may sign in to the admin\n"
        )
        assert run("staff", "bob", "on", "--reason", "again") == (
            "bob may sign in to the admin (unchanged)\n"
        )
        assert run("staff", "bob", "off", "--reason", "done") == (
            "bob may not sign in to the admin\n"
        )
        assert [
            (e.payload["old"], e.payload["new"], e.payload["reason"])
            for e in Event.objects.filter(kind=EventKind.USER_STAFF_CHANGED).order_by("seq")
        ] == [(False, True, "runs backups"), (True, False, "done")]
        with pytest.raises(CommandError, match=r"reason: The reason is required\."):
            run("staff", "bob", "on")
        assert not User.objects.get(username="bob").is_staff


@pytest.mark.django_db
def test_seed_demo_records_the_platform_admins_flags_as_events():
    call_command("seed_demo", "--quiet-logins", stdout=io.StringIO())
    flagged = set(
        User.objects.filter(is_staff=True, is_superuser=True).values_list("username", flat=True)
    )
    assert flagged
    for kind in (EventKind.USER_STAFF_CHANGED, EventKind.USER_SUPERUSER_CHANGED):
        assert {e.payload["username"] for e in Event.objects.filter(kind=kind)} == flagged
    before = Event.objects.count()
    call_command("seed_demo", "--quiet-logins", stdout=io.StringIO())
    assert not Event.objects.filter(
        seq__gt=before, kind__in=[EventKind.USER_STAFF_CHANGED, EventKind.USER_SUPERUSER_CHANGED]
    ).exists()
