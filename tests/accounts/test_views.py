"""Pages: login/logout, home, tenant access management, tokens; headers, CSRF and throttling."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from accounts import services
from accounts.models import ApiToken, RoleGrant

pytestmark = pytest.mark.django_db


def login(client: Client, user) -> Client:
    client.force_login(user)
    return client


class TestLoginLogout:
    def test_login_page_has_security_headers_and_csp(self, client):
        resp = client.get("/login/")
        assert resp.status_code == 200
        csp = resp["Content-Security-Policy"]
        assert "default-src 'self'" in csp
        assert "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert resp["X-Frame-Options"] == "DENY"
        assert resp["X-Content-Type-Options"] == "nosniff"
        assert resp["Referrer-Policy"] == "same-origin"
        assert b'name="csrfmiddlewaretoken"' in resp.content
        assert b"http://" not in resp.content
        assert b"https://" not in resp.content  # no CDN

    @pytest.mark.usefixtures("acme")
    def test_login_home_logout(self, client, make_user):
        make_user("rev", password="s3cret-pass", acme="reviewer")
        resp = client.post("/login/", {"username": "rev", "password": "s3cret-pass"}, follow=True)
        assert resp.redirect_chain[-1][0] == "/"
        html = resp.content.decode()
        assert "Welcome, rev" in html
        assert re.search(r'href="/tenants/acme/">acme</a>.*?data-role="reviewer"', html, re.S)
        out = client.post("/logout/", follow=True)
        assert out.redirect_chain[-1][0] == "/login/"
        assert client.get("/").status_code == 302

    def test_wrong_password_shows_message(self, client, make_user):
        make_user("rev", password="right")
        resp = client.post("/login/", {"username": "rev", "password": "wrong"})
        assert resp.status_code == 200
        assert "Please enter a correct username and password" in resp.content.decode()

    @pytest.mark.usefixtures("acme")
    def test_post_without_csrf_token_is_refused(self, make_user):
        make_user("rev", password="pw-12345", acme="reviewer")
        strict = Client(enforce_csrf_checks=True)
        resp = strict.post("/login/", {"username": "rev", "password": "pw-12345"})
        assert resp.status_code == 403
        assert "_auth_user_id" not in strict.session

    def test_login_throttled_after_repeated_failures(self, client, make_user, settings):
        make_user("rev", password="right")
        for _ in range(settings.AXES_FAILURE_LIMIT):
            client.post("/login/", {"username": "rev", "password": "wrong"})
        locked = client.post("/login/", {"username": "rev", "password": "right"})
        assert locked.status_code == 429
        assert "Too many failed log-in attempts" in locked.content.decode()
        assert "_auth_user_id" not in client.session

    def test_pages_need_login(self, client):
        for path in [
            "/",
            "/registry/",
            "/reviews/",
            "/governance/",
            "/account/tokens/",
            "/tenants/acme/",
        ]:
            resp = client.get(path)
            assert resp.status_code == 302, path
            assert resp["Location"].startswith("/login/"), path


class TestNavigationAndHome:
    @pytest.mark.usefixtures("acme")
    def test_nav_links_and_pages(self, client, make_user):
        login(client, make_user("rev", acme="reviewer"))
        html = client.get("/").content.decode()
        for label, href in [
            ("Registry", "/registry/"),
            ("Reviews", "/reviews/"),
            ("Governance", "/governance/"),
        ]:
            assert f'href="{href}"' in html
            assert label in html
        assert "/admin/" not in html  # not staff
        for path in ["/registry/", "/reviews/", "/governance/"]:
            page = client.get(path)
            assert page.status_code == 200
            assert 'aria-current="page"' in page.content.decode()

    def test_home_query_count_does_not_grow_with_tenants(
        self, client, make_user, tenant_factory, django_assert_max_num_queries
    ):
        user = make_user("rev")
        login(client, user)
        services.role_grant(
            user=user, role="reviewer", tenant=tenant_factory(slug="t0"), actor=None
        )
        client.get("/")
        # The home page reads every floor (governance.dashboards.home); with nothing to do,
        # the sections cost a few queries each, whatever the number of tenants.
        with django_assert_max_num_queries(12) as few:
            client.get("/")
        for i in range(1, 15):
            services.role_grant(
                user=user, role="reviewer", tenant=tenant_factory(slug=f"t{i}"), actor=None
            )
        with django_assert_max_num_queries(len(few.captured_queries)):
            html = client.get("/").content.decode()
        assert html.count('data-role="reviewer"') == 15

    @pytest.mark.usefixtures("acme")
    def test_tenant_page_query_count_does_not_grow_with_members(
        self, client, make_user, django_assert_max_num_queries
    ):
        login(client, make_user("boss", acme="administrator"))
        make_user("m0", acme="reviewer")
        with django_assert_max_num_queries(20) as few:
            client.get("/tenants/acme/")
        for i in range(1, 12):
            make_user(f"m{i}", acme=["reviewer", "privacy_officer"])
        with django_assert_max_num_queries(len(few.captured_queries)):
            html = client.get("/tenants/acme/").content.decode()
        assert html.count(">Revoke Privacy officer</button>") == 11  # one button per grant


class TestTenantAccessPages:
    @pytest.mark.usefixtures("acme")
    def test_other_tenant_is_404(self, client, globex, make_user):
        login(client, make_user("rev", acme="reviewer"))
        assert client.get("/tenants/globex/").status_code == 404
        assert (
            client.post(
                "/tenants/globex/grant/", {"username": "rev", "role": "administrator"}
            ).status_code
            == 404
        )
        assert not RoleGrant.objects.filter(tenant=globex).exists()

    @pytest.mark.usefixtures("acme")
    def test_admin_grants_and_revokes_in_browser_forms(self, client, make_user):
        boss = make_user("boss", acme="administrator")
        make_user("alice", acme="member")
        login(client, boss)
        page = client.get("/tenants/acme/").content.decode()
        assert "Grant a role" in page
        resp = client.post(
            "/tenants/acme/grant/",
            {"username": "alice", "role": "reviewer", "reason": "new"},
            follow=True,
        )
        assert "Granted Reviewer to alice in acme." in resp.content.decode()
        grant = RoleGrant.objects.get(user__username="alice", revoked_at__isnull=True)
        assert (grant.role, grant.granted_by, grant.reason) == ("reviewer", boss, "new")
        resp = client.post(
            "/tenants/acme/revoke/",
            {"username": "alice", "role": "reviewer", "reason": "moved team", "password": "pw"},
            follow=True,
        )
        assert "Revoked Reviewer from alice in acme." in resp.content.decode()
        grant.refresh_from_db()
        assert (grant.revoked_by, grant.revoke_reason) == (boss, "moved team")
        assert re.search(
            r'<td>alice</td><td data-role="reviewer">Reviewer</td>.*?<td>boss</td>\s*<td>new</td>.*?'
            r"<td>boss</td>\s*<td>moved team</td>",
            resp.content.decode(),
            re.S,
        )

    @pytest.mark.usefixtures("acme")
    def test_grant_form_errors_are_shown_on_the_form(self, client, make_user):
        login(client, make_user("boss", acme="administrator"))
        resp = client.post("/tenants/acme/grant/", {"username": "ghost", "role": "reviewer"})
        assert resp.status_code == 404
        assert "No member &#x27;ghost&#x27; in &#x27;acme&#x27;." in resp.content.decode()
        resp = client.post("/tenants/acme/grant/", {"username": "boss", "role": "king"})
        assert resp.status_code == 400
        assert "Select a valid choice" in resp.content.decode()

    def test_grant_to_a_foreign_user_reads_like_an_unknown_one(
        self, client, acme, globex, make_user
    ):
        login(client, make_user("boss", acme="administrator"))
        make_user("gina", globex="reviewer")
        for username in ("gina", "ghost"):
            resp = client.post("/tenants/acme/grant/", {"username": username, "role": "reviewer"})
            assert resp.status_code == 404
            assert f"No member &#x27;{username}&#x27; in &#x27;acme&#x27;." in (
                resp.content.decode()
            )
        assert not RoleGrant.objects.filter(tenant=acme, user__username="gina").exists()

    @pytest.mark.usefixtures("acme")
    def test_revoke_without_a_reason_is_refused_on_the_page(self, client, make_user):
        login(client, make_user("boss", acme="administrator"))
        make_user("alice", acme="reviewer")
        page = client.get("/tenants/acme/").content.decode()
        assert 'name="reason" required' in page
        assert "Why revoked" in page
        resp = client.post("/tenants/acme/revoke/", {"username": "alice", "role": "reviewer"})
        assert resp.status_code == 400
        assert "Not revoked. reason: This field is required." in resp.content.decode()
        assert RoleGrant.objects.get(user__username="alice").revoked_at is None
        last = client.post(
            "/tenants/acme/revoke/",
            {"username": "boss", "role": "administrator", "reason": "x", "password": "pw"},
        )
        assert last.status_code == 409
        assert "last administrator of &#x27;acme&#x27;" in last.content.decode()

    @pytest.mark.usefixtures("acme")
    def test_revoking_a_role_says_what_and_needs_the_password(self, client, make_user):
        login(client, make_user("boss", acme="administrator"))
        make_user("alice", acme="privacy_officer")
        page = client.get("/tenants/acme/").content.decode()
        assert "Revoke alice's privacy officer role in acme." in page
        assert 'name="password"' in page
        form = {"username": "alice", "role": "privacy_officer", "reason": "rota"}
        resp = client.post("/tenants/acme/revoke/", form)
        assert resp.status_code == 400
        assert "Confirm your password: it is a deliberate act." in resp.content.decode()
        resp = client.post("/tenants/acme/revoke/", {**form, "password": "wrong"})
        assert resp.status_code == 403
        assert "That is not your password. Nothing changed." in resp.content.decode()
        assert RoleGrant.objects.get(user__username="alice").revoked_at is None
        resp = client.post("/tenants/acme/revoke/", {**form, "password": "pw"})
        assert resp.status_code == 302
        assert RoleGrant.objects.get(user__username="alice").revoked_at is not None

    @pytest.mark.usefixtures("acme")
    def test_who_may_not_revoke_sees_no_form_and_is_told_why(self, client, make_user):
        login(client, make_user("rev", acme="reviewer"))
        make_user("alice", acme="privacy_officer")
        page = client.get("/tenants/acme/").content.decode()
        assert "/tenants/acme/revoke/" not in page
        assert 'name="password"' not in page
        resp = client.post(
            "/tenants/acme/revoke/",
            {"username": "alice", "role": "privacy_officer", "reason": "x", "password": "pw"},
        )
        assert resp.status_code == 403
        assert "Only an administrator of &#x27;acme&#x27;" in resp.content.decode()
        assert RoleGrant.objects.get(user__username="alice").revoked_at is None

    @pytest.mark.usefixtures("acme")
    def test_reviewer_has_no_grant_form_and_is_refused(self, client, make_user):
        login(client, make_user("rev", acme="reviewer"))
        make_user("alice")
        assert "Grant a role" not in client.get("/tenants/acme/").content.decode()
        resp = client.post("/tenants/acme/grant/", {"username": "alice", "role": "reviewer"})
        assert resp.status_code == 403
        assert "Only an administrator of &#x27;acme&#x27;" in resp.content.decode()
        assert not RoleGrant.objects.filter(user__username="alice").exists()


class TestTokenPages:
    def test_create_shows_once_then_revoke(self, client, make_user):
        alice = make_user("alice")
        login(client, alice)
        resp = client.post("/account/tokens/", {"name": "ci-publish", "expires_days": 30})
        html = resp.content.decode()
        found = re.search(r'id="new-token">(gov_[^<]+)<', html)
        assert found is not None
        raw = found.group(1)
        token = ApiToken.objects.get(user=alice)
        assert token.prefix == raw[:12]
        assert token.name == "ci-publish"
        again = client.get("/account/tokens/").content.decode()
        assert raw not in again
        assert f"{token.prefix}…" in again
        client.post(f"/account/tokens/{token.pk}/revoke/")
        token.refresh_from_db()
        assert token.revoked_at is not None

    def test_bad_expiry_shows_field_error(self, client, make_user):
        login(client, make_user("alice"))
        resp = client.post("/account/tokens/", {"name": "x", "expires_days": 0})
        assert resp.status_code == 400
        assert "Ensure this value is greater than or equal to 1." in resp.content.decode()
        assert not ApiToken.objects.exists()

    def test_cannot_revoke_others_token(self, client, make_user):
        token, _ = services.token_create(user=make_user("alice"), name="x", actor=None)
        login(client, make_user("bob"))
        assert client.post(f"/account/tokens/{token.pk}/revoke/").status_code == 404
        token.refresh_from_db()
        assert token.revoked_at is None


def test_admin_is_on_for_staff(client, make_user):
    staff = make_user("root")
    staff.is_staff = staff.is_superuser = True
    staff.save()
    login(client, staff)
    resp = client.get("/admin/accounts/rolegrant/")
    assert resp.status_code == 200
    assert 'href="/admin/"' in client.get("/").content.decode()
