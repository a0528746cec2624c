"""The account page's passkeys: the JSON ceremony the page's script drives, the list, revoking."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.test import Client

from accounts import services
from accounts.models import Passkey, PasskeyChallenge
from accounts.passkeys import RelyingParty
from governance.kernel import reauth
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from tests.passkey_authenticator import SoftAuthenticator

pytestmark = pytest.mark.django_db
BEGIN = "/account/passkeys/register/begin/"
FINISH = "/account/passkeys/register/finish/"
PARTY = RelyingParty(rp_id="testserver", origin="http://testserver")


def browser(user: Any) -> Client:
    """A signed-in browser that sends the CSRF token as the page's script does."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get("/account/tokens/").status_code == 200  # sets the CSRF cookie
    session = client.session
    session[reauth.SESSION_KEY] = {"user": str(user.pk), "at": time.time()}  # confirmed lately
    session.save()
    return client


def post_json(client: Client, url: str, body: Any) -> Any:
    token = client.cookies["csrftoken"].value if "csrftoken" in client.cookies else ""
    return client.post(
        url,
        data=json.dumps(body) if not isinstance(body, bytes) else body,
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )


def register(client: Client, device: SoftAuthenticator, name: str = "Laptop") -> Any:
    begun = post_json(client, BEGIN, {})
    assert begun.status_code == 200, begun.content
    body = begun.json()
    return post_json(
        client,
        FINISH,
        {
            "challenge_id": body["challenge_id"],
            "credential": device.register(body["options"]),
            "name": name,
        },
    )


def registered(user: Any, name: str = "Laptop") -> Passkey:
    challenge, options = services.passkey_registration_begin(user=user, party=PARTY)
    return services.passkey_register(
        user=user,
        challenge_id=challenge.pk,
        credential=SoftAuthenticator().register(options),
        name=name,
    )


def test_register_in_two_steps_lists_the_passkey_and_logs_its_key(make_user: Any) -> None:
    user = make_user("officer")
    client = browser(user)
    begun = post_json(client, BEGIN, {})
    options = begun.json()["options"]
    assert options["rp"]["id"] == "testserver"
    assert options["user"]["name"] == "officer"
    assert PasskeyChallenge.objects.get(pk=begun.json()["challenge_id"]).purpose == "register"

    device = SoftAuthenticator()
    done = post_json(
        client,
        FINISH,
        {
            "challenge_id": begun.json()["challenge_id"],
            "credential": device.register(options),
            "name": "Work laptop",
        },
    )
    assert done.status_code == 201, done.content
    passkey = Passkey.objects.get(user=user)
    assert done.json()["passkey"]["id"] == str(passkey.pk)
    assert done.json()["passkey"]["name"] == "Work laptop"
    event = Event.objects.get(kind=EventKind.PASSKEY_REGISTERED)
    assert event.payload["public_key_spki"] == passkey.public_key_spki

    html = client.get("/account/tokens/").content.decode()
    assert "Passkey &#x27;Work laptop&#x27; added" in html  # said once, after the reload
    row = html[html.index(f'data-passkey="{passkey.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "Work laptop" in row
    assert "active" in row
    assert "never" in row
    assert 'src="/static/js/passkeys.js"' in html
    assert html.count('id="passkeys"') == 1
    assert "<title>API tokens ·" in html
    assert "<script>" not in html  # no inline script: the CSP forbids it


def test_the_json_endpoints_refuse_without_csrf_and_signed_out(make_user: Any) -> None:
    user = make_user("officer")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(BEGIN, data="{}", content_type="application/json").status_code == 403
    assert not PasskeyChallenge.objects.exists()
    anonymous = Client()
    refused = anonymous.post(BEGIN, data="{}", content_type="application/json")
    assert refused.status_code == 401
    assert refused.json()["code"] == "not_authenticated"
    got = browser(user).get(BEGIN)  # the address opened: the page it serves
    assert got.status_code == 302
    assert got["Location"] == "/account/tokens/"


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        (b"not json", "body", 400),
        ([1, 2], "body", 400),
        ({"credential": {}, "name": "x"}, "challenge_id", 400),
        ({"challenge_id": "not-a-uuid", "credential": {}}, "challenge_id", 404),
        ({"challenge_id": "BEGUN", "credential": "text"}, "credential", 400),
        ({"challenge_id": "BEGUN", "credential": {"id": "x"}}, "credential", 400),
        ({"challenge_id": "BEGUN", "credential": {}, "name": 7}, "name", 400),
        ({"challenge_id": "BEGUN", "credential": "DEVICE", "name": "n" * 101}, "name", 400),
    ],
)
def test_finish_refusals_name_the_field(make_user: Any, body: Any, field: str, status: int) -> None:
    client = browser(make_user("officer"))
    if isinstance(body, dict):
        begun = post_json(client, BEGIN, {}).json()
        body = {k: begun["challenge_id"] if v == "BEGUN" else v for k, v in body.items()}
        if body.get("credential") == "DEVICE":
            body["credential"] = SoftAuthenticator().register(begun["options"])
    response = post_json(client, FINISH, body)
    assert response.status_code == status, response.content
    assert response.json()["field"] == field
    assert response.json()["detail"]
    assert not Passkey.objects.exists()


def test_a_challenge_answers_once(make_user: Any) -> None:
    client = browser(make_user("officer"))
    begun = post_json(client, BEGIN, {}).json()
    device = SoftAuthenticator()
    credential = device.register(begun["options"])
    payload = {"challenge_id": begun["challenge_id"], "credential": credential, "name": "A"}
    assert post_json(client, FINISH, payload).status_code == 201
    again = post_json(client, FINISH, payload)
    assert again.status_code == 409
    assert again.json()["field"] == "challenge_id"
    assert Passkey.objects.count() == 1


def test_a_challenge_of_someone_else_is_not_found(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    begun = post_json(browser(alice), BEGIN, {}).json()
    stolen = post_json(
        browser(bob),
        FINISH,
        {
            "challenge_id": begun["challenge_id"],
            "credential": SoftAuthenticator().register(begun["options"]),
        },
    )
    assert stolen.status_code == 404
    assert stolen.json()["field"] == "challenge_id"
    assert not Passkey.objects.exists()


# --- revoking -------------------------------------------------------------------------------


def revoke_url(passkey: Passkey) -> str:
    return f"/account/passkeys/{passkey.pk}/revoke/"


def test_owner_revokes_with_the_password(make_user: Any) -> None:
    user = make_user("officer")
    passkey = registered(user)
    client = Client()
    client.force_login(user)
    page = client.get("/account/tokens/").content.decode()
    assert f'action="{revoke_url(passkey)}"' in page
    assert 'name="password"' in page[page.index('id="passkeys"') :]

    refused = client.post(revoke_url(passkey), {"reason": "Lost it"}, follow=True)
    assert "Confirm your password" in refused.content.decode()
    passkey.refresh_from_db()
    assert passkey.revoked_at is None

    done = client.post(revoke_url(passkey), {"reason": "Lost it", "password": "pw"})
    assert done.status_code == 302
    assert done["Location"] == "/account/tokens/#passkeys"
    passkey.refresh_from_db()
    assert passkey.revoked_at is not None
    assert passkey.revoked_by == user
    assert passkey.revoke_reason == "Lost it"
    event = Event.objects.get(kind=EventKind.PASSKEY_REVOKED)
    assert event.payload["credential_id"] == passkey.credential_id
    html = client.get("/account/tokens/").content.decode()
    row = html[html.index(f'data-passkey="{passkey.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "revoked" in row
    assert "Lost it" in row
    assert revoke_url(passkey) not in row  # nothing left to revoke


def test_someone_else_cannot_revoke_and_learns_nothing(make_user: Any) -> None:
    passkey = registered(make_user("officer"))
    other = Client()
    other.force_login(make_user("mallory"))
    response = other.post(revoke_url(passkey), {"reason": "mine now", "password": "pw"})
    assert response.status_code == 404
    passkey.refresh_from_db()
    assert passkey.revoked_at is None
    assert not Event.objects.filter(kind=EventKind.PASSKEY_REVOKED).exists()


def test_platform_administrator_revokes_someone_elses_passkey(make_user: Any) -> None:
    owner = make_user("officer")
    passkey = registered(owner)
    admin = make_user("root")
    services.role_grant(user=admin, role="administrator", tenant=None, actor=None)
    client = Client()
    client.force_login(admin)
    done = client.post(revoke_url(passkey), {"reason": "Laptop stolen", "password": "pw"})
    assert done.status_code == 302
    assert done["Location"].endswith(f"?user__id__exact={owner.pk}")
    passkey.refresh_from_db()
    assert passkey.revoked_by == admin
    assert passkey.revoke_reason == "Laptop stolen"
    event = Event.objects.get(kind=EventKind.PASSKEY_REVOKED)
    assert event.actor == admin
    # A safe "next" leads back where the administrator was.
    second = registered(owner, name="Phone")
    back = client.post(revoke_url(second), {"reason": "Stolen too", "next": "/tenants/x/"})
    assert back["Location"] == "/tenants/x/"
    evil = registered(owner, name="Key")
    away = client.post(revoke_url(evil), {"next": "https://evil.example/"})
    assert "evil" not in away["Location"]


def test_platform_administrator_revokes_in_the_admin(make_user: Any) -> None:
    owner = make_user("officer")
    passkey = registered(owner)
    admin = make_user("root")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    client = Client()
    client.force_login(admin)
    listing = client.get(f"/admin/accounts/passkey/?user__id__exact={owner.pk}")
    assert listing.status_code == 200
    assert "Laptop" in listing.content.decode()
    client.post(
        "/admin/accounts/passkey/",
        {"action": "revoke_selected", "_selected_action": [str(passkey.pk)], "reason": "Left"},
    )
    passkey.refresh_from_db()
    assert passkey.revoked_by == admin
    assert passkey.revoke_reason == "Left"


def _mangled(good: dict[str, Any]) -> list[Any]:
    response = good["response"]
    return [
        {**good, "rawId": 5},
        {**good, "response": "x"},
        {**good, "response": {**response, "attestationObject": "!!"}},
        {**good, "response": {**response, "clientDataJSON": "e30"}},
        {**good, "response": {**response, "attestationObject": None}},
        {**good, "type": "other"},
        {**good, "response": {**response, "transports": "usb"}},
    ]


def test_mangled_credentials_are_refused_never_a_500(make_user: Any) -> None:
    client = browser(make_user("officer"))
    begun = post_json(client, BEGIN, {}).json()
    good = SoftAuthenticator().register(begun["options"])
    for credential in _mangled(good):
        fresh = post_json(client, BEGIN, {}).json()
        response = post_json(
            client, FINISH, {"challenge_id": fresh["challenge_id"], "credential": credential}
        )
        assert 400 <= response.status_code < 500, (credential, response.content)
        assert response.json()["field"] == "credential"
    assert not Passkey.objects.exists()


def test_adding_a_passkey_asks_for_the_password_unless_confirmed_lately(make_user: Any) -> None:
    user = make_user("officer", password="right-pw")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    page = client.get("/account/tokens/")
    assert 'id="passkey-password"' in page.content.decode()
    missing = post_json(client, BEGIN, {})
    assert (missing.status_code, missing.json()["field"]) == (400, "password")
    wrong = post_json(client, BEGIN, {"password": "nope"})
    assert (wrong.status_code, wrong.json()["field"]) == (403, "password")
    assert not PasskeyChallenge.objects.filter(user=user).exists()
    begun = post_json(client, BEGIN, {"password": "right-pw"})
    assert begun.status_code == 200
    assert PasskeyChallenge.objects.filter(user=user, pk=begun.json()["challenge_id"]).exists()
    # Confirmed now: the next one needs no password, and the page offers no field.
    assert post_json(client, BEGIN, {}).status_code == 200
    assert 'id="passkey-password"' not in client.get("/account/tokens/").content.decode()
