"""Passkeys over the API: register (two calls, with the password), list, read, revoke; another
person's passkey is invisible; every refusal a 4xx naming the field."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services
from accounts.models import Passkey, PasskeyChallenge
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from tests.passkey_authenticator import SoftAuthenticator

pytestmark = pytest.mark.django_db
BASE = "/api/v1/passkeys/"
PASSWORD = "pw"  # make_user's default


def error(resp: Any) -> tuple[int, str | None, str]:
    body = resp.json()["error"]
    return resp.status_code, body["field"], body["code"]


def begin(client: APIClient) -> dict[str, Any]:
    resp = client.post(f"{BASE}registration-options/", format="json")
    assert resp.status_code == 200, resp.json()
    return dict(resp.json())


def register(client: APIClient, device: SoftAuthenticator, name: str = "Laptop") -> Any:
    begun = begin(client)
    resp = client.post(
        BASE,
        {
            "challenge_id": begun["challenge_id"],
            "credential": device.register(begun["options"]),
            "name": name,
            "password": PASSWORD,
        },
        format="json",
    )
    assert resp.status_code == 201, resp.json()
    return resp.json()


@pytest.fixture
def alice(make_user: Any, acme: Any) -> Any:
    return make_user("alice", acme=["member", "security_officer"])


@pytest.fixture
def bob(make_user: Any, acme: Any) -> Any:
    return make_user("bob", acme="member")


@pytest.fixture
def root(make_user: Any) -> Any:
    user = make_user("root")
    services.role_grant(user=user, role="administrator", tenant=None, actor=None)
    return user


def test_registration_options_are_creation_options(alice: Any, token_client: Any) -> None:
    begun = begin(token_client(alice))
    options = begun["options"]
    assert options["rp"]["id"] == begun["rp_id"] == "testserver"
    assert begun["origin"] == "http://testserver"
    assert options["user"]["name"] == "alice"
    assert options["challenge"]
    assert options["pubKeyCredParams"]
    row = PasskeyChallenge.objects.get(pk=begun["challenge_id"])
    assert (row.purpose, row.user, row.used_at) == ("register", alice, None)
    assert begun["expires_at"]


def test_register_list_read_and_the_event(alice: Any, token_client: Any) -> None:
    client = token_client(alice)
    device = SoftAuthenticator()
    created = register(client, device, name="Work laptop")
    passkey = Passkey.objects.get()
    assert created["id"] == str(passkey.pk)
    assert (created["username"], created["name"], created["state"]) == (
        "alice",
        "Work laptop",
        "active",
    )
    assert created["credential_id"] == passkey.credential_id
    assert created["public_key_spki"] == passkey.public_key_spki
    assert created["algorithm"] == -7
    assert created["transports"] == ["internal"]
    assert "public_key_cose" not in created
    event = Event.objects.get(kind=EventKind.PASSKEY_REGISTERED)
    assert event.payload["public_key_spki"] == created["public_key_spki"]
    assert event.actor_id == alice.pk
    listed = client.get(BASE).json()
    assert [p["id"] for p in listed["results"]] == [created["id"]]
    assert client.get(f"{BASE}{created['id']}/").json() == created
    # Excluded next time, so the authenticator does not register the same key twice.
    again = begin(client)
    assert [c["id"] for c in again["options"]["excludeCredentials"]] == [created["credential_id"]]


def test_registering_needs_the_password(alice: Any, token_client: Any) -> None:
    client = token_client(alice)
    device = SoftAuthenticator()
    for password in ("", "wrong"):
        begun = begin(client)
        resp = client.post(
            BASE,
            {
                "challenge_id": begun["challenge_id"],
                "credential": device.register(begun["options"]),
                "password": password,
            },
            format="json",
        )
        assert error(resp) == (403, "password", "password_required")
    assert not Passkey.objects.exists()
    assert not Event.objects.filter(kind=EventKind.PASSKEY_REGISTERED).exists()


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"challenge_id": "nope"}, 400, "challenge_id"),
        ({"challenge_id": None}, 400, "challenge_id"),
        ({"challenge_id": "00000000-0000-0000-0000-000000000000"}, 404, "challenge_id"),
        ({"credential": "{not json"}, 400, "credential"),
        ({"credential": ["x"]}, 400, "credential"),
        ({"credential": {"id": "x", "response": {}}}, 400, "credential"),
        ({"credential": {"id": 1, "rawId": None, "response": "x"}}, 400, "credential"),
        ({"name": "x" * 101}, 400, "name"),
    ],
)
def test_bad_registration_input_names_the_field(
    alice: Any, token_client: Any, change: dict[str, Any], status: int, field: str
) -> None:
    client = token_client(alice)
    begun = begin(client)
    body = {
        "challenge_id": begun["challenge_id"],
        "credential": SoftAuthenticator().register(begun["options"]),
        "password": PASSWORD,
        **change,
    }
    resp = client.post(BASE, body, format="json")
    assert error(resp)[:2] == (status, field), resp.json()
    assert not Passkey.objects.exists()


def test_a_challenge_registers_once_and_only_its_owner(
    alice: Any, bob: Any, token_client: Any
) -> None:
    client = token_client(alice)
    device = SoftAuthenticator()
    begun = begin(client)
    body = {
        "challenge_id": begun["challenge_id"],
        "credential": device.register(begun["options"]),
        "password": PASSWORD,
    }
    # Bob cannot answer Alice's challenge: it reads as missing.
    assert error(token_client(bob).post(BASE, body, format="json")) == (
        404,
        "challenge_id",
        "not_found",
    )
    assert client.post(BASE, body, format="json").status_code == 201
    resp = client.post(BASE, body, format="json")
    assert error(resp) == (409, "challenge_id", "conflict")
    assert "already answered" in resp.json()["error"]["message"]
    assert Passkey.objects.count() == 1


def test_an_expired_challenge_is_refused(alice: Any, token_client: Any) -> None:
    client = token_client(alice)
    begun = begin(client)
    PasskeyChallenge.objects.filter(pk=begun["challenge_id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    resp = client.post(
        BASE,
        {
            "challenge_id": begun["challenge_id"],
            "credential": SoftAuthenticator().register(begun["options"]),
            "password": PASSWORD,
        },
        format="json",
    )
    assert error(resp) == (409, "challenge_id", "conflict")
    assert "expired" in resp.json()["error"]["message"]


def test_the_same_key_twice_is_a_conflict(alice: Any, token_client: Any) -> None:
    client = token_client(alice)
    device = SoftAuthenticator()
    register(client, device)
    begun = begin(client)
    resp = client.post(
        BASE,
        {
            "challenge_id": begun["challenge_id"],
            "credential": device.register(begun["options"]),
            "password": PASSWORD,
        },
        format="json",
    )
    assert error(resp) == (409, "credential", "conflict")


def test_another_persons_passkey_is_invisible(alice: Any, bob: Any, token_client: Any) -> None:
    mine = register(token_client(alice), SoftAuthenticator())
    client = token_client(bob)
    assert client.get(BASE).json()["results"] == []
    assert error(client.get(f"{BASE}{mine['id']}/")) == (404, "id", "not_found")
    resp = client.post(
        f"{BASE}{mine['id']}/revoke/", {"reason": "mine now", "password": PASSWORD}, format="json"
    )
    assert error(resp) == (404, "id", "not_found")
    assert error(client.get(f"{BASE}alice/")) == (404, "id", "not_found")
    assert error(client.get(f"{BASE}?user=alice")) == (403, "user", "permission_denied")
    assert client.get(f"{BASE}?user=bob").json()["results"] == []
    assert Passkey.objects.get().revoked_at is None


def test_a_platform_administrator_sees_and_revokes_anyones(
    alice: Any, bob: Any, root: Any, token_client: Any
) -> None:
    alices = register(token_client(alice), SoftAuthenticator())
    bobs = register(token_client(bob), SoftAuthenticator(), name="Phone")
    admin = token_client(root)
    assert admin.get(BASE).json()["results"] == []  # their own
    only = admin.get(f"{BASE}?user=bob").json()["results"]
    assert [p["id"] for p in only] == [bobs["id"]]
    assert error(admin.get(f"{BASE}?user=nobody")) == (404, "username", "not_found")
    assert admin.get(f"{BASE}{alices['id']}/").json()["username"] == "alice"
    resp = admin.post(
        f"{BASE}{alices['id']}/revoke/",
        {"reason": "Lost laptop", "password": PASSWORD},
        format="json",
    )
    assert resp.status_code == 200
    assert (resp.json()["state"], resp.json()["revoked_by"], resp.json()["revoke_reason"]) == (
        "revoked",
        "root",
        "Lost laptop",
    )
    event = Event.objects.get(kind=EventKind.PASSKEY_REVOKED)
    assert (event.actor_id, event.payload["reason"]) == (root.pk, "Lost laptop")


def test_revoke_own_needs_the_password_and_a_reason_and_is_idempotent(
    alice: Any, token_client: Any
) -> None:
    client = token_client(alice)
    created = register(client, SoftAuthenticator())
    revoke = f"{BASE}{created['id']}/revoke/"
    for password in ("", "wrong"):
        resp = client.post(revoke, {"reason": "Lost", "password": password}, format="json")
        assert error(resp) == (403, "password", "password_required")
    assert client.get(f"{BASE}{created['id']}/").json()["state"] == "active"
    assert error(client.post(revoke, {}, format="json"))[:2] == (400, "reason")
    assert error(client.post(revoke, {"reason": "x" * 501}, format="json"))[:2] == (400, "reason")
    first = client.post(
        revoke, {"reason": "Lost laptop", "password": PASSWORD}, format="json"
    ).json()
    assert (first["state"], first["revoked_by"]) == ("revoked", "alice")
    again = client.post(revoke, {"reason": "Again", "password": PASSWORD}, format="json").json()
    assert (again["revoked_at"], again["revoke_reason"]) == (first["revoked_at"], "Lost laptop")
    assert Event.objects.filter(kind=EventKind.PASSKEY_REVOKED).count() == 1
    assert client.get(f"{BASE}{created['id']}/").json()["state"] == "revoked"


def test_passkeys_need_a_signed_in_caller(api: APIClient) -> None:
    assert api.get(BASE).status_code == 401
    assert api.post(f"{BASE}registration-options/", format="json").status_code == 401


def test_an_origin_not_offered_is_refused(alice: Any, token_client: Any, settings: Any) -> None:
    settings.WEBAUTHN_ORIGINS = ["https://gov.example"]
    resp = token_client(alice).post(f"{BASE}registration-options/", format="json")
    assert error(resp)[:2] == (400, "origin")
    assert "https://gov.example" in resp.json()["error"]["message"]
