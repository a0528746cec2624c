"""Service tokens: services, the permission, the authenticator and its cache, page, CLI, API."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from accounts import services
from accounts.authentication import (
    BearerTokenAuthentication,
    HasTokenScope,
    ServiceOrPersonalTokenAuthentication,
    ServicePrincipal,
    ServiceTokenAuthentication,
    clear_service_token_cache,
    require_scope,
    service_principal,
)
from accounts.choices import TokenScope
from accounts.models import ServiceToken, Tenant, User
from accounts.permissions import can_manage_service_tokens
from governance.kernel.errors import Conflict, DomainError, Forbidden
from governance.kernel.events import generation
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from tests.cli import refused
from tests.conftest import subprocess_database_url
from tests.redis_db import redis_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _own_generation(settings: Any, tmp_path: Path) -> Any:
    """A generation file of this test's own (other test runs bump the shared one), no Redis,
    and an empty token cache."""
    settings.RUNTIME_GENERATION_FILE = str(tmp_path / "runtime-generation")
    settings.REDIS_URL = ""
    settings.SERVICE_TOKEN_CACHE_SECONDS = 5
    clear_service_token_cache()
    yield settings
    clear_service_token_cache()


@pytest.fixture
def owner(acme: Tenant, make_user: Any) -> User:
    return make_user("olga", acme="administrator")


class RuntimeProbe(APIView):
    """A tiny runtime-like endpoint: what a machine with ``runtime:read`` may call."""

    authentication_classes = [ServiceTokenAuthentication]
    permission_classes = [require_scope(TokenScope.RUNTIME_READ)]

    def get(self, request: Any) -> Response:
        principal: ServicePrincipal = request.user
        return Response(
            {
                "tenant": principal.tenant_slug,
                "scopes": sorted(principal.scopes),
                "who": principal.get_username(),
                "auth_is_principal": request.auth is principal,
                "generation": request.runtime_generation,
            }
        )


probe = RuntimeProbe.as_view()


def call_probe(raw: str | None) -> Response:
    headers: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {raw}"} if raw else {}
    response: Response = probe(APIRequestFactory().get("/probe/", **headers))
    response.render()
    return response


def error(response: Any) -> dict[str, Any]:
    import json

    return json.loads(response.content)["error"]


# --- services ------------------------------------------------------------------------------


@pytest.mark.django_db
class TestServices:
    def test_create_stores_only_the_digest_and_records_the_event(self, acme, owner):
        token, raw = services.service_token_create(
            tenant=acme,
            name=" sales-agent ",
            scopes=["telemetry:write", "runtime:read", "runtime:read"],
            actor=owner,
        )
        assert raw.startswith("gsv_")
        assert len(raw) > 40
        token.refresh_from_db()
        assert token.digest == hashlib.sha256(raw.encode()).hexdigest()
        assert token.prefix == raw[:12]
        assert raw not in (token.prefix, token.digest)
        assert token.name == "sales-agent"
        assert token.scopes == ["runtime:read", "telemetry:write"]
        assert token.tenant == acme
        assert token.created_by == owner
        assert token.expires_at is None
        assert token.state() == "active"
        event = Event.objects.get(kind=EventKind.SERVICE_TOKEN_CREATED)
        assert event.tenant_id == acme.pk
        assert event.actor_id == owner.pk
        assert event.payload == {
            "tenant": "acme",
            "name": "sales-agent",
            "prefix": token.prefix,
            "scopes": ["runtime:read", "telemetry:write"],
            "expires_at": None,
        }

    @pytest.mark.parametrize(
        ("kwargs", "field", "message"),
        [
            ({"scopes": ["runtime:write"]}, "scopes", "Unknown scope 'runtime:write'"),
            ({"scopes": []}, "scopes", "Give at least one scope"),
            ({"scopes": ["", " "]}, "scopes", "Give at least one scope"),
            ({"name": "  "}, "name", "name is required"),
            ({"name": "x" * 101}, "name", "At most 100"),
            (
                {"expires_at": timezone.now() - timedelta(minutes=1)},
                "expires_at",
                "in the future",
            ),
        ],
    )
    def test_bad_input_is_refused_naming_the_field(self, acme, owner, kwargs, field, message):
        args = {"tenant": acme, "name": "svc", "scopes": ["runtime:read"], "actor": owner}
        with pytest.raises(DomainError) as exc:
            services.service_token_create(**{**args, **kwargs})
        assert exc.value.field == field
        assert message in exc.value.message
        assert not ServiceToken.objects.exists()
        assert not Event.objects.filter(kind=EventKind.SERVICE_TOKEN_CREATED).exists()

    def test_only_administrators_of_the_tenant(self, acme, globex, make_user, owner):
        reviewer = make_user("rita", acme="reviewer")
        other_admin = make_user("gus", globex="administrator")
        platform = make_user("pat")
        services.role_grant(user=platform, role="administrator", tenant=None, actor=None)
        assert can_manage_service_tokens(owner, acme)
        assert can_manage_service_tokens(platform, acme)
        assert can_manage_service_tokens(None, acme)
        refused = can_manage_service_tokens(reviewer, acme)
        assert not refused
        assert "administrator of 'acme'" in refused.reason
        assert not can_manage_service_tokens(other_admin, acme)
        for actor in (reviewer, other_admin):
            with pytest.raises(Forbidden):
                services.service_token_create(
                    tenant=acme, name="x", scopes=["runtime:read"], actor=actor
                )
        token, _ = services.service_token_create(
            tenant=acme, name="x", scopes=["runtime:read"], actor=platform
        )
        with pytest.raises(Forbidden):
            services.service_token_revoke(token=token, actor=reviewer, reason="no")
        assert ServiceToken.objects.get().revoked_at is None

    def test_revoke_records_who_when_why_once(self, acme, owner):
        token, _ = services.service_token_create(
            tenant=acme, name="svc", scopes=["runtime:read"], actor=owner
        )
        with pytest.raises(DomainError) as exc:
            services.service_token_revoke(token=token, actor=owner, reason=" ")
        assert exc.value.field == "reason"
        revoked = services.service_token_revoke(token=token, actor=owner, reason="leaked in CI")
        token.refresh_from_db()
        assert token.revoked_at is not None
        assert token.revoked_by == owner
        assert token.revoke_reason == "leaked in CI"
        assert token.state() == "revoked"
        assert revoked.revoked_at == token.revoked_at
        event = Event.objects.get(kind=EventKind.SERVICE_TOKEN_REVOKED)
        assert event.payload == {
            "tenant": "acme",
            "name": "svc",
            "prefix": token.prefix,
            "reason": "leaked in CI",
        }
        with pytest.raises(Conflict):
            services.service_token_revoke(token=token, actor=owner, reason="again")
        assert Event.objects.filter(kind=EventKind.SERVICE_TOKEN_REVOKED).count() == 1


# --- authentication --------------------------------------------------------------------------


@pytest.mark.django_db
class TestAuthentication:
    def test_a_service_token_with_the_scope_is_a_principal_of_its_tenant(self, acme):
        _, raw = services.service_token_create(
            tenant=acme, name="svc", scopes=["runtime:read"], actor=None
        )
        resp = call_probe(raw)
        assert resp.status_code == 200
        assert resp.data == {
            "tenant": "acme",
            "scopes": ["runtime:read"],
            "who": f"service-token:acme/{raw[:12]}",
            "auth_is_principal": True,
            "generation": generation.current(),
        }
        principal = service_principal(raw)
        assert principal.covers_tenant("acme")
        assert not principal.covers_tenant("globex")

    def test_a_missing_scope_is_a_403_naming_it(self, acme):
        _, raw = services.service_token_create(
            tenant=acme, name="svc", scopes=["telemetry:write"], actor=None
        )
        resp = call_probe(raw)
        assert resp.status_code == 403
        assert error(resp)["message"] == (
            f"Service token {raw[:12]}… lacks the scope 'runtime:read' (it holds: telemetry:write)."
        )

    @pytest.mark.usefixtures("db")
    def test_no_token_is_a_401(self):
        resp = call_probe(None)
        assert resp.status_code == 401
        assert resp["WWW-Authenticate"] == 'Bearer realm="api"'

    @pytest.mark.usefixtures("acme")
    def test_a_personal_token_does_not_pass_as_a_service_token(self, owner):
        _, personal = services.token_create(user=owner, name="mine", actor=owner)
        resp = call_probe(personal)
        assert resp.status_code == 401
        assert error(resp)["code"] == "service_token_required"
        assert "personal token is not accepted" in error(resp)["message"]

    def test_a_service_token_does_not_pass_on_the_ordinary_api(self, acme):
        _, raw = services.service_token_create(
            tenant=acme, name="svc", scopes=["runtime:read"], actor=None
        )
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        resp = client.get("/api/v1/me/")
        assert resp.status_code == 401
        assert resp.json()["error"]["code"] == "service_token_not_accepted"

    def test_personal_tokens_still_work_on_the_ordinary_api(self, make_user, token_client):
        resp = token_client(make_user("alice")).get("/api/v1/me/")
        assert resp.status_code == 200
        assert resp.json()["auth"] == "token"

    def test_unknown_malformed_and_expired_tokens_are_refused(self, acme, monkeypatch):
        assert error(call_probe("gsv_" + "x" * 43))["code"] == "token_invalid"
        resp = probe(APIRequestFactory().get("/probe/", HTTP_AUTHORIZATION="Basic abc"))
        resp.render()
        assert resp.status_code == 401
        assert error(resp)["code"] == "token_malformed"
        soon = timezone.now() + timedelta(minutes=10)
        _, raw = services.service_token_create(
            tenant=acme, name="svc", scopes=["runtime:read"], actor=None, expires_at=soon
        )
        assert call_probe(raw).status_code == 200  # now cached
        later = soon + timedelta(seconds=1)
        monkeypatch.setattr(timezone, "now", lambda: later)
        resp = call_probe(raw)  # the cached entry expires too, without asking the database
        assert resp.status_code == 401
        assert error(resp)["code"] == "token_expired"
        assert "expired at" in error(resp)["message"]

    def test_a_warm_request_runs_no_sql(self, acme, django_assert_num_queries):
        _, raw = services.service_token_create(
            tenant=acme, name="svc", scopes=["runtime:read"], actor=None
        )
        with django_assert_num_queries(1):  # cold: one read of the token with its tenant
            assert call_probe(raw).status_code == 200
        with django_assert_num_queries(0):
            resp = call_probe(raw)
        assert resp.status_code == 200
        assert resp.data["tenant"] == "acme"

    def test_revocation_bites_on_the_next_request_even_when_cached(self, acme, owner):
        token, raw = services.service_token_create(
            tenant=acme, name="svc", scopes=["runtime:read"], actor=owner
        )
        assert call_probe(raw).status_code == 200
        before = generation.current()
        services.service_token_revoke(token=token, actor=owner, reason="rotated")
        assert generation.current() != before  # the revocation's event moved it
        resp = call_probe(raw)
        assert resp.status_code == 401
        assert error(resp)["code"] == "token_revoked"

    def test_the_cache_is_real_and_its_age_is_capped(self, acme, monkeypatch):
        """A change that bypasses the event log (no bump) is still seen after the max age."""
        token, raw = services.service_token_create(
            tenant=acme, name="svc", scopes=["runtime:read"], actor=None
        )
        assert call_probe(raw).status_code == 200
        ServiceToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
        assert call_probe(raw).status_code == 200  # same generation, young entry: cached
        real = time.monotonic
        monkeypatch.setattr(time, "monotonic", lambda: real() + 5.01)
        resp = call_probe(raw)
        assert resp.status_code == 401
        assert error(resp)["code"] == "token_revoked"


SUBPROCESS = textwrap.dedent(
    """
    import sys, django
    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.exceptions import AuthenticationFailed
    from accounts.authentication import service_principal

    raw = sys.argv[1]
    service_principal(raw)
    with CaptureQueriesContext(connection) as queries:
        service_principal(raw)
    print("warm", len(queries), flush=True)
    sys.stdin.readline()
    try:
        with CaptureQueriesContext(connection) as queries:
            service_principal(raw)
        print("accepted", len(queries), flush=True)
    except AuthenticationFailed as exc:
        print("refused", exc.detail.code, flush=True)
    """
)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("source", ["file", "redis"])
def test_revocation_in_one_process_bites_in_another_that_cached_it(
    acme: Tenant, settings: Any, source: str
) -> None:
    """Another server process verified the token and answers warm with no SQL; this process
    revokes it; that process's next request is refused (with Redis, once its generation read is
    older than RUNTIME_GENERATION_MAX_AGE_MS: a quarter of a second, not the promised five)."""
    if source == "redis":
        settings.REDIS_URL = redis_url()  # this run's own database; skips without Redis
    token, raw = services.service_token_create(
        tenant=acme, name="svc", scopes=["runtime:read"], actor=None
    )
    env = {
        **os.environ,
        "DATABASE_URL": subprocess_database_url(),
        "DJANGO_SETTINGS_MODULE": "governance.settings",
        "RUNTIME_GENERATION_FILE": settings.RUNTIME_GENERATION_FILE,
        "REDIS_URL": settings.REDIS_URL,
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", SUBPROCESS, raw],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdin is not None
        assert proc.stdout.readline().split() == ["warm", "0"]
        services.service_token_revoke(token=token, actor=None, reason="leaked")
        if source == "redis":
            # A process re-reads the Redis generation at most every RUNTIME_GENERATION_MAX_AGE_MS.
            time.sleep(settings.RUNTIME_GENERATION_MAX_AGE_MS / 1000 + 0.05)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().split() == ["refused", "token_revoked"]
    finally:
        stderr = proc.communicate(timeout=60)[1]
    assert proc.returncode == 0, stderr


# --- page ------------------------------------------------------------------------------------


@pytest.mark.django_db
class TestTenantPage:
    def test_administrators_see_create_and_revoke(self, client, acme, owner):
        other, _ = services.service_token_create(
            tenant=acme, name="old-agent", scopes=["telemetry:write"], actor=None
        )
        client.force_login(owner)
        page = client.get("/tenants/acme/")
        assert page.status_code == 200
        body = page.content.decode()
        assert "Service tokens" in body
        assert "old-agent" in body
        assert other.prefix in body
        assert "telemetry:write" in body
        assert "never" in body
        resp = client.post(
            "/tenants/acme/service-tokens/",
            {"name": "sales-agent", "scopes": ["runtime:read", "telemetry:write"]},
        )
        assert resp.status_code == 200
        created = ServiceToken.objects.get(name="sales-agent")
        assert created.scopes == ["runtime:read", "telemetry:write"]
        assert created.created_by == owner
        assert created.tenant == acme
        shown = resp.context["new_service_token"]
        assert shown in resp.content.decode()
        assert hashlib.sha256(shown.encode()).hexdigest() == created.digest
        assert shown not in client.get("/tenants/acme/").content.decode()  # shown once
        resp = client.post(
            f"/tenants/acme/service-tokens/{created.pk}/revoke/", {"reason": "rotate"}
        )
        assert resp.status_code == 302
        created.refresh_from_db()
        assert created.revoked_by == owner
        assert created.revoke_reason == "rotate"
        body = client.get("/tenants/acme/").content.decode()
        assert "revoked" in body
        assert "rotate" in body

    def test_bad_input_is_shown_on_the_form(self, client, acme, owner):
        client.force_login(owner)
        resp = client.post("/tenants/acme/service-tokens/", {"name": "x", "scopes": ["nope"]})
        assert resp.status_code == 400
        assert "nope" in str(resp.context["service_token_form"].errors["scopes"])
        token, _ = services.service_token_create(
            tenant=acme, name="svc", scopes=["runtime:read"], actor=None
        )
        resp = client.post(f"/tenants/acme/service-tokens/{token.pk}/revoke/", {"reason": ""})
        assert resp.status_code == 400
        token.refresh_from_db()
        assert token.revoked_at is None
        assert not ServiceToken.objects.filter(name="x").exists()

    def test_members_see_no_tokens_and_cannot_create(self, client, acme, make_user):
        services.service_token_create(
            tenant=acme, name="hidden-agent", scopes=["runtime:read"], actor=None
        )
        client.force_login(make_user("rita", acme="reviewer"))
        body = client.get("/tenants/acme/").content.decode()
        assert "hidden-agent" not in body
        assert "Create a service token" not in body
        resp = client.post(
            "/tenants/acme/service-tokens/", {"name": "mine", "scopes": ["runtime:read"]}
        )
        assert resp.status_code == 403
        assert not ServiceToken.objects.filter(name="mine").exists()


# --- CLI -------------------------------------------------------------------------------------


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("accounts", "service-token", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
class TestCommand:
    @pytest.mark.usefixtures("acme")
    def test_create_list_revoke(self):
        raw = run(
            "create", "acme", "sales-agent", "--scope", "runtime:read", "--scope", "telemetry:write"
        ).strip()
        token = ServiceToken.objects.get()
        assert raw.startswith("gsv_")
        assert token.digest == hashlib.sha256(raw.encode()).hexdigest()
        assert token.scopes == ["runtime:read", "telemetry:write"]
        assert token.created_by is None
        line = run("list", "acme").rstrip("\n").split("\t")
        assert line[:5] == [
            str(token.pk),
            f"{token.prefix}…",
            "sales-agent",
            "runtime:read,telemetry:write",
            "active",
        ]
        assert line[6] == "-"
        out = run("revoke", token.prefix, "--reason", "rotated")
        assert out == f"Revoked service token {token.prefix}… (acme/sales-agent)\n"
        token.refresh_from_db()
        assert token.revoke_reason == "rotated"
        assert token.state() == "revoked"
        assert run("list", "acme").split("\t")[4] == "revoked"

    @pytest.mark.usefixtures("acme")
    def test_expiry_and_revoke_by_id(self):
        run("create", "acme", "svc", "--scope", "runtime:read", "--expires-at", "2999-01-02T03:04")
        token = ServiceToken.objects.get()
        assert token.expires_at is not None
        assert token.expires_at.year == 2999
        run("revoke", str(token.pk), "--reason", "done")
        assert ServiceToken.objects.get().revoked_at is not None

    @pytest.mark.usefixtures("acme")
    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["create", "acme", "svc", "--scope", "runtime:write"], "scopes: Unknown scope"),
            (["create", "nope", "svc", "--scope", "runtime:read"], "tenant: No tenant 'nope'"),
            (
                ["create", "acme", "svc", "--scope", "runtime:read", "--expires-at", "soon"],
                "expires_at",
            ),
            (["revoke", "gsv_nothing", "--reason", "x"], "token: No service token"),
        ],
    )
    def test_bad_input_names_the_field(self, args, message):
        assert message in refused("accounts", "service-token", *args)
        assert not ServiceToken.objects.exists()

    def test_revoke_needs_a_reason(self, acme):
        token, _ = services.service_token_create(
            tenant=acme, name="svc", scopes=["runtime:read"], actor=None
        )
        assert "reason: The reason is required" in refused(
            "accounts", "service-token", "revoke", str(token.pk)
        )
        token.refresh_from_db()
        assert token.revoked_at is None


# --- API -------------------------------------------------------------------------------------


@pytest.mark.django_db
class TestApi:
    @pytest.mark.usefixtures("acme")
    def test_create_list_revoke(self, globex, owner, make_user):
        services.service_token_create(
            tenant=globex, name="theirs", scopes=["runtime:read"], actor=None
        )
        client = APIClient()
        client.force_authenticate(owner)
        resp = client.post(
            "/api/v1/service-tokens/",
            {"tenant": "acme", "name": "sales-agent", "scopes": ["runtime:read"]},
            format="json",
        )
        assert resp.status_code == 201, resp.content
        data = resp.json()
        token = ServiceToken.objects.get(name="sales-agent")
        assert data["token"].startswith("gsv_")
        assert hashlib.sha256(data["token"].encode()).hexdigest() == token.digest
        assert data["id"] == str(token.pk)
        assert data["tenant"] == "acme"
        assert data["scopes"] == ["runtime:read"]
        assert data["state"] == "active"
        assert data["created_by"] == "olga"
        assert data["expires_at"] is None
        listing = client.get("/api/v1/service-tokens/").json()
        assert [t["name"] for t in listing["results"]] == ["sales-agent"]  # not globex's
        assert "token" not in listing["results"][0]
        assert client.get("/api/v1/service-tokens/?tenant=globex").json()["results"] == []
        resp = client.post(f"/api/v1/service-tokens/{token.pk}/revoke/", {}, format="json")
        assert resp.status_code == 400
        assert resp.json()["error"]["field"] == "reason"
        resp = client.post(
            f"/api/v1/service-tokens/{token.pk}/revoke/", {"reason": "rotate"}, format="json"
        )
        assert resp.status_code == 200
        assert resp.json()["state"] == "revoked"
        assert resp.json()["revoke_reason"] == "rotate"
        assert resp.json()["revoked_by"] == "olga"
        resp = client.post(
            f"/api/v1/service-tokens/{token.pk}/revoke/", {"reason": "again"}, format="json"
        )
        assert resp.status_code == 409

    @pytest.mark.usefixtures("acme")
    def test_bad_scope_names_the_field(self, owner):
        client = APIClient()
        client.force_authenticate(owner)
        resp = client.post(
            "/api/v1/service-tokens/",
            {"tenant": "acme", "name": "x", "scopes": ["runtime:write"]},
            format="json",
        )
        assert resp.status_code == 400
        assert resp.json()["error"]["field"].startswith("scopes")
        assert not ServiceToken.objects.exists()

    def test_members_are_refused_and_strangers_see_nothing(self, acme, globex, make_user):
        token, _ = services.service_token_create(
            tenant=acme, name="svc", scopes=["runtime:read"], actor=None
        )
        member = APIClient()
        member.force_authenticate(make_user("rita", acme="reviewer"))
        assert member.get("/api/v1/service-tokens/").json()["results"] == []
        resp = member.post(
            "/api/v1/service-tokens/",
            {"tenant": "acme", "name": "x", "scopes": ["runtime:read"]},
            format="json",
        )
        assert resp.status_code == 403
        assert "administrator of 'acme'" in resp.json()["error"]["message"]
        resp = member.post(
            f"/api/v1/service-tokens/{token.pk}/revoke/", {"reason": "x"}, format="json"
        )
        assert resp.status_code == 403
        stranger = APIClient()
        stranger.force_authenticate(make_user("gus", globex="administrator"))
        resp = stranger.post(
            f"/api/v1/service-tokens/{token.pk}/revoke/", {"reason": "x"}, format="json"
        )
        assert resp.status_code == 404
        resp = stranger.post(
            "/api/v1/service-tokens/",
            {"tenant": "acme", "name": "x", "scopes": ["runtime:read"]},
            format="json",
        )
        assert resp.status_code == 404
        assert resp.json()["error"]["field"] == "tenant"
        token.refresh_from_db()
        assert token.revoked_at is None
        assert ServiceToken.objects.count() == 1

    def test_openapi_describes_the_endpoints(self, api):
        import json

        resp = api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
        paths = json.loads(resp.content)["paths"]
        assert {"get", "post"} <= set(paths["/api/v1/service-tokens/"])
        assert "post" in paths["/api/v1/service-tokens/{id}/revoke/"]


# --- admin and the view-level scope ------------------------------------------------------------


@pytest.mark.django_db
def test_admin_lists_without_digest_and_revokes_with_a_reason(client, acme, make_user):
    root = make_user("root")
    root.is_staff = root.is_superuser = True
    root.save()
    token, _ = services.service_token_create(
        tenant=acme, name="svc", scopes=["runtime:read"], actor=None
    )
    client.force_login(root)
    page = client.get("/admin/accounts/servicetoken/").content.decode()
    assert token.prefix in page
    assert token.digest not in page
    assert (
        token.digest
        not in client.get(f"/admin/accounts/servicetoken/{token.pk}/change/").content.decode()
    )
    form = {"action": "revoke_selected", "_selected_action": [str(token.pk)]}
    resp = client.post("/admin/accounts/servicetoken/", form, follow=True)
    assert "Reason: The reason is required." in resp.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is None
    client.post("/admin/accounts/servicetoken/", {**form, "reason": "left"}, follow=True)
    token.refresh_from_db()
    assert (token.revoked_by, token.revoke_reason) == (root, "left")


class TelemetryProbe(APIView):
    """The scope may also be named on the view, with the plain permission class."""

    authentication_classes = [ServiceTokenAuthentication]
    permission_classes = [HasTokenScope]
    required_scope = TokenScope.TELEMETRY_WRITE

    def post(self, request: Any) -> Response:
        return Response({"tenant": request.user.tenant_slug})


@pytest.mark.django_db
def test_scope_named_on_the_view(acme):
    _, reader = services.service_token_create(
        tenant=acme, name="r", scopes=["runtime:read"], actor=None
    )
    _, writer = services.service_token_create(
        tenant=acme, name="w", scopes=["telemetry:write"], actor=None
    )
    view = TelemetryProbe.as_view()
    factory = APIRequestFactory()
    refused = view(factory.post("/t/", HTTP_AUTHORIZATION=f"Bearer {reader}"))
    assert refused.status_code == 403
    assert "lacks the scope 'telemetry:write'" in str(refused.data["error"]["message"])
    allowed = view(factory.post("/t/", HTTP_AUTHORIZATION=f"Bearer {writer}"))
    assert allowed.status_code == 200
    assert allowed.data == {"tenant": "acme"}
    with pytest.raises(ValueError, match="Unknown scope"):
        require_scope("runtime:write")


class EitherProbe(APIView):
    """An endpoint that people and machines both read, as the runtime configuration does."""

    authentication_classes = [ServiceOrPersonalTokenAuthentication, BearerTokenAuthentication]

    def get(self, request: Any) -> Response:
        if isinstance(request.user, ServicePrincipal):
            return Response({"machine": request.user.tenant_slug})
        return Response({"person": request.user.username})


@pytest.mark.django_db
def test_people_and_machines_on_one_endpoint_never_pass_for_each_other(acme, owner):
    _, machine = services.service_token_create(
        tenant=acme, name="svc", scopes=["runtime:read"], actor=None
    )
    _, person = services.token_create(user=owner, name="mine", actor=owner)
    view = EitherProbe.as_view()
    factory = APIRequestFactory()
    assert view(factory.get("/e/", HTTP_AUTHORIZATION=f"Bearer {machine}")).data == {
        "machine": "acme"
    }
    assert view(factory.get("/e/", HTTP_AUTHORIZATION=f"Bearer {person}")).data == {
        "person": "olga"
    }
    # A person holds no scope: a scoped endpoint refuses them even when it admits people.

    class ScopedEither(EitherProbe):
        permission_classes = [require_scope(TokenScope.RUNTIME_READ)]

    scoped = ScopedEither.as_view()
    refused = scoped(factory.get("/e/", HTTP_AUTHORIZATION=f"Bearer {person}"))
    assert refused.status_code == 403
    assert "service token with the scope 'runtime:read'" in str(refused.data["error"]["message"])
    bad = view(factory.get("/e/", HTTP_AUTHORIZATION="Bearer gsv_unknown"))
    assert bad.status_code == 401
    assert bad.data["error"]["code"] == "token_invalid"
