"""REST API: bearer tokens, tenant isolation, grants taking effect on the next request."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import services
from accounts.models import ApiToken, RoleGrant

pytestmark = pytest.mark.django_db


def bearer(api, raw):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api


class TestBearerTokens:
    @pytest.mark.usefixtures("acme", "globex")
    def test_me_with_token(self, api, make_user):
        alice = make_user("alice", acme=["reviewer", "security_officer"])
        _, raw = services.token_create(user=alice, name="ci", actor=None)
        body = bearer(api, raw).get("/api/v1/me/").json()
        assert body["username"] == "alice"
        assert body["auth"] == "token"
        assert body["platform_administrator"] is False
        assert [(t["tenant"]["slug"], t["roles"]) for t in body["tenants"]] == [
            ("acme", ["reviewer", "security_officer"])
        ]
        assert ApiToken.objects.get(user=alice).last_used_at is not None

    def test_no_credentials(self, api):
        resp = api.get("/api/v1/me/")
        assert resp.status_code == 401
        assert resp.json()["error"]["code"] == "not_authenticated"
        assert resp["WWW-Authenticate"].startswith("Bearer")

    @pytest.mark.parametrize(
        ("header", "code"),
        [
            ("Bearer gov_nope", "token_invalid"),
            ("Bearer a b", "token_malformed"),
            ("Bearer", "token_malformed"),
        ],
    )
    def test_bad_tokens(self, api, header, code):
        api.credentials(HTTP_AUTHORIZATION=header)
        resp = api.get("/api/v1/me/")
        assert resp.status_code == 401
        assert resp.json()["error"]["code"] == code

    def test_revoked_token_gets_401_with_reason(self, api, make_user):
        alice = make_user("alice")
        token, raw = services.token_create(user=alice, name="ci", actor=None)
        assert bearer(api, raw).get("/api/v1/me/").status_code == 200
        services.token_revoke(token=token, actor=alice)
        resp = api.get("/api/v1/me/")
        assert resp.status_code == 401
        error = resp.json()["error"]
        assert error["code"] == "token_revoked"
        assert "revoked" in error["message"]
        assert token.prefix in error["message"]

    def test_expired_token_gets_401_with_reason(self, api, make_user):
        alice = make_user("alice")
        token, raw = services.token_create(user=alice, name="ci", actor=None, expires_days=1)
        ApiToken.objects.filter(pk=token.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
        resp = bearer(api, raw).get("/api/v1/me/")
        assert resp.status_code == 401
        assert resp.json()["error"]["code"] == "token_expired"
        assert "expired at" in resp.json()["error"]["message"]

    def test_deactivated_user_token(self, api, make_user):
        alice = make_user("alice")
        _, raw = services.token_create(user=alice, name="ci", actor=None)
        alice.is_active = False
        alice.save()
        resp = bearer(api, raw).get("/api/v1/me/")
        assert resp.status_code == 401
        assert resp.json()["error"]["code"] == "user_inactive"

    def test_token_lifecycle_over_api(self, api, make_user):
        alice = make_user("alice")
        api.force_authenticate(alice)
        created = api.post(
            "/api/v1/tokens/", {"name": "pipeline", "expires_days": 30}, format="json"
        )
        assert created.status_code == 201
        raw = created.json()["token"]
        assert created.json()["state"] == "active"
        listing = api.get("/api/v1/tokens/").json()["results"]
        assert [t["name"] for t in listing] == ["pipeline"]
        assert "token" not in listing[0]
        assert "digest" not in listing[0]
        api.force_authenticate(None)
        assert bearer(api, raw).get("/api/v1/me/").json()["auth"] == "token"
        revoked = api.post(f"/api/v1/tokens/{created.json()['id']}/revoke/")
        assert revoked.status_code == 200
        assert revoked.json()["state"] == "revoked"
        assert api.get("/api/v1/me/").status_code == 401

    def test_token_create_validation(self, api, make_user):
        api.force_authenticate(make_user("alice"))
        resp = api.post("/api/v1/tokens/", {"name": "x", "expires_days": 0}, format="json")
        assert resp.status_code == 400
        assert resp.json()["error"]["field"] == "expires_days"
        assert not ApiToken.objects.exists()

    def test_cannot_revoke_someone_elses_token(self, api, make_user):
        alice, bob = make_user("alice"), make_user("bob")
        token, _ = services.token_create(user=alice, name="ci", actor=None)
        api.force_authenticate(bob)
        assert api.post(f"/api/v1/tokens/{token.pk}/revoke/").status_code == 404
        assert ApiToken.objects.get(pk=token.pk).revoked_at is None


class TestTenantIsolation:
    @pytest.mark.usefixtures("acme")
    def test_reviewer_of_acme_sees_nothing_of_globex(self, globex, make_user, token_client):
        make_user("gadmin", globex="administrator")
        client = token_client(make_user("rev", acme="reviewer"))
        assert [t["tenant"]["slug"] for t in client.get("/api/v1/tenants/").json()] == ["acme"]
        for method, path, data in [
            ("get", "/api/v1/tenants/globex/", None),
            ("get", "/api/v1/tenants/globex/grants/", None),
            ("post", "/api/v1/tenants/globex/grants/", {"username": "rev", "role": "reviewer"}),
            (
                "post",
                "/api/v1/tenants/globex/grants/revoke/",
                {"username": "gadmin", "role": "administrator"},
            ),
        ]:
            resp = getattr(client, method)(path, data, format="json")
            assert resp.status_code == 404, path
            assert resp.json()["error"]["code"] == "not_found"
        assert RoleGrant.objects.filter(tenant=globex, revoked_at__isnull=True).count() == 1

    @pytest.mark.usefixtures("acme")
    def test_tenant_detail_lists_members_and_roles(self, make_user, token_client):
        make_user("boss", acme="administrator")
        client = token_client(make_user("rev", acme="reviewer"))
        body = client.get("/api/v1/tenants/acme/").json()
        assert body["slug"] == "acme"
        assert {m["username"]: m["roles"] for m in body["members"]} == {
            "boss": ["administrator"],
            "rev": ["reviewer"],
        }

    @pytest.mark.usefixtures("acme")
    def test_reviewer_cannot_grant(self, make_user, token_client):
        make_user("alice")
        client = token_client(make_user("rev", acme="reviewer"))
        resp = client.post(
            "/api/v1/tenants/acme/grants/", {"username": "alice", "role": "reviewer"}, format="json"
        )
        assert resp.status_code == 403
        assert "administrator of 'acme'" in resp.json()["error"]["message"]
        assert not RoleGrant.objects.filter(user__username="alice").exists()

    @pytest.mark.usefixtures("acme")
    def test_grant_and_revoke_take_effect_on_next_request(self, make_user, token_client):
        boss = make_user("boss", acme="administrator")
        alice = make_user("alice", acme="member")
        admin_client = token_client(boss)
        alice_client = token_client(alice)
        assert alice_client.get("/api/v1/me/").json()["tenants"][0]["roles"] == []

        resp = admin_client.post(
            "/api/v1/tenants/acme/grants/",
            {"username": "alice", "role": "administrator", "reason": "cover"},
            format="json",
        )
        assert resp.status_code == 201
        assert (resp.json()["username"], resp.json()["role"], resp.json()["granted_by"]) == (
            "alice",
            "administrator",
            "boss",
        )
        again = admin_client.post(
            "/api/v1/tenants/acme/grants/",
            {"username": "alice", "role": "administrator"},
            format="json",
        )
        assert again.status_code == 200
        assert again.json()["id"] == resp.json()["id"]

        # alice can now grant: the very next request sees the role.
        ok = alice_client.post(
            "/api/v1/tenants/acme/grants/", {"username": "boss", "role": "reviewer"}, format="json"
        )
        assert ok.status_code == 201

        revoked = admin_client.post(
            "/api/v1/tenants/acme/grants/revoke/",
            {"username": "alice", "role": "administrator", "reason": "cover ended"},
            format="json",
        )
        assert revoked.status_code == 200
        assert (revoked.json()["revoked_by"], revoked.json()["revoke_reason"]) == (
            "boss",
            "cover ended",
        )
        refused = alice_client.post(
            "/api/v1/tenants/acme/grants/",
            {"username": "boss", "role": "privacy_officer"},
            format="json",
        )
        assert refused.status_code == 403
        assert alice_client.get("/api/v1/me/").json()["tenants"][0]["roles"] == []

        history = admin_client.get("/api/v1/tenants/acme/grants/?history=1").json()["results"]
        assert [
            (g["username"], g["role"], g["revoked_by"]) for g in history if g["username"] == "alice"
        ] == [("alice", "administrator", "boss")]

    @pytest.mark.usefixtures("acme")
    def test_grant_input_errors_name_the_field(self, make_user, token_client):
        client = token_client(make_user("boss", acme="administrator"))
        bad_role = client.post(
            "/api/v1/tenants/acme/grants/", {"username": "boss", "role": "king"}, format="json"
        )
        assert bad_role.status_code == 400
        assert bad_role.json()["error"]["field"] == "role"
        no_user = client.post(
            "/api/v1/tenants/acme/grants/", {"username": "ghost", "role": "reviewer"}, format="json"
        )
        assert no_user.status_code == 404
        assert no_user.json()["error"]["field"] == "username"
        missing = client.post("/api/v1/tenants/acme/grants/", {}, format="json")
        assert missing.status_code == 400
        assert missing.json()["error"]["field"] in {
            "username",
            "role",
        }

    def test_foreign_user_reads_like_an_unknown_one(self, acme, globex, make_user, token_client):
        client = token_client(make_user("boss", acme="administrator"))
        make_user("gina", globex="reviewer")
        bodies = []
        for username in ("gina", "ghost"):
            for path in ("/api/v1/tenants/acme/grants/", "/api/v1/tenants/acme/grants/revoke/"):
                resp = client.post(
                    path, {"username": username, "role": "reviewer", "reason": "r"}, format="json"
                )
                assert resp.status_code == 404, (username, path)
                error = resp.json()["error"]
                bodies.append((error["field"], error["message"].replace(username, "?")))
        assert bodies == [("username", "No member '?' in 'acme'.")] * 4
        assert not RoleGrant.objects.filter(tenant=acme, user__username="gina").exists()

    def test_revoke_needs_a_reason_and_keeps_the_last_administrator(
        self, acme, make_user, token_client
    ):
        client = token_client(make_user("boss", acme="administrator"))
        make_user("alice", acme="reviewer")
        for body in (
            {"username": "alice", "role": "reviewer"},
            {"username": "alice", "role": "reviewer", "reason": "  "},
        ):
            resp = client.post("/api/v1/tenants/acme/grants/revoke/", body, format="json")
            assert resp.status_code == 400, body
            assert resp.json()["error"]["field"] == "reason", body
        last = client.post(
            "/api/v1/tenants/acme/grants/revoke/",
            {"username": "boss", "role": "administrator", "reason": "stepping down"},
            format="json",
        )
        assert last.status_code == 409
        assert "last administrator of 'acme'" in last.json()["error"]["message"]
        assert RoleGrant.objects.filter(tenant=acme, revoked_at__isnull=True).count() == 2

    def test_tenant_list_query_count_does_not_grow(
        self, make_user, tenant_factory, token_client, django_assert_max_num_queries
    ):
        alice = make_user("alice")
        client = token_client(alice)
        for i in range(2):
            services.role_grant(
                user=alice, role="reviewer", tenant=tenant_factory(slug=f"t{i}"), actor=None
            )
        client.get("/api/v1/tenants/")  # warm the token's last_used_at
        with django_assert_max_num_queries(6) as few:
            assert len(client.get("/api/v1/tenants/").json()) == 2
        for i in range(2, 12):
            services.role_grant(
                user=alice, role="reviewer", tenant=tenant_factory(slug=f"t{i}"), actor=None
            )
        with django_assert_max_num_queries(len(few.captured_queries)):
            assert len(client.get("/api/v1/tenants/").json()) == 12


def test_openapi_schema_describes_endpoints_and_bearer(api):
    resp = api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert resp.status_code == 200
    import json

    schema = json.loads(resp.content)
    assert {"/api/v1/me/", "/api/v1/tenants/{slug}/grants/", "/api/v1/tokens/{id}/revoke/"} <= set(
        schema["paths"]
    )
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
