"""No page address ever answers a GET with a blank page (issue 15).

The walker reads the URL configuration, so a route added tomorrow is walked too. Every HTML
route (the API, the admin and the probes aside) is fetched with GET by a signed-in user holding
every role, with identifiers that exist nowhere: a page answers with its page or the 404 page,
and an action (POST only) answers with a redirect to the page of its object. None answers 405
or an empty body.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.models import Tenant, User

#: Not pages for a person's browser (each has tests of its own).
NOT_PAGES = ("api/", "ofrep/", "admin/", "metrics", "healthz", "readyz")

#: A value for each path parameter, of the right shape, naming nothing that exists.
VALUES = {
    "reference": "CR-999999",
    "action": "approve",
    "cls": "prompt",
    "tenant": "acme",
    "slug": "nowhere",
    "version": "9.9.9",
    "number": "999999",
    "seq": "999999",
    "run_id": str(uuid.UUID(int=1)),
    "token_id": str(uuid.UUID(int=2)),
    "passkey_id": str(uuid.UUID(int=4)),
    "name": "nowhere",
    "pk": "999999",
}


def _routes() -> Iterator[str]:
    def walk(resolver: URLResolver, prefix: str) -> Iterator[tuple[str, URLPattern]]:
        for entry in resolver.url_patterns:
            text = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                yield from walk(entry, text)
            else:
                yield text, entry

    for route, _ in walk(get_resolver(), ""):
        if not route.startswith(NOT_PAGES):
            yield route


def _url(route: str) -> str:
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: VALUES[str(m.group(1))], route)


ROUTES = sorted(set(_routes()))


@pytest.fixture
def everyone(acme: Tenant, make_user: Callable[..., User]) -> Client:
    user = make_user(
        "walker",
        acme=["member", "administrator", "security_officer", "privacy_officer"],
    )
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_the_walk_covers_every_action_route() -> None:
    routes = set(ROUTES)
    for action in (
        "reviews/changes/<str:reference>/<str:action>/",
        "registry/<slug:cls>/<slug:tenant>/<slug:slug>/v/<str:version>/retire/",
        "rollouts/RO-<int:number>/<str:action>/",
        "tenants/<slug:slug>/grant/",
        "governance/waivers/<str:reference>/countersign/",
        "logout/",
    ):
        assert action in routes


@pytest.mark.django_db
@pytest.mark.parametrize("route", ROUTES)
def test_a_get_never_shows_a_blank_page(route: str, everyone: Client) -> None:
    if route == "logout/":
        response = everyone.get("/logout/")
        assert response.status_code == 302
        assert response["Location"] == "/"
        return
    response = everyone.get(_url(route))
    assert response.status_code != 405, f"{route}: a blank 405 on GET"
    if response.status_code in (301, 302, 303):
        assert response["Location"], route
    else:
        assert response.content.strip(), f"{route}: an empty body ({response.status_code})"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "page"),
    [
        ("/reviews/changes/CR-7/approve/", "/reviews/changes/CR-7/"),
        ("/reviews/changes/CR-7/comment/", "/reviews/changes/CR-7/"),
        ("/registry/prompt/acme/x/v/1.0.0/deprecate/", "/registry/prompt/acme/x/v/1.0.0/"),
        ("/registry/prompt/acme/x/owner/", "/registry/prompt/acme/x/"),
        ("/reviews/rollback/prompt/acme/x/", "/registry/prompt/acme/x/"),
        ("/rollouts/RO-3/advance/", "/rollouts/RO-3/"),
        (
            "/rollouts/applications/shop/slots/main/override/",
            "/rollouts/applications/shop/slots/main/",
        ),
        ("/tenants/acme/revoke/", "/tenants/acme/"),
        (f"/account/tokens/{uuid.UUID(int=3)}/revoke/", "/account/tokens/"),
        (f"/account/passkeys/{uuid.UUID(int=3)}/revoke/", "/account/tokens/"),
        ("/account/passkeys/register/begin/", "/account/tokens/"),
        ("/reviews/changes/CR-7/passkey-challenge/", "/reviews/changes/CR-7/"),
        ("/governance/waivers/WV-1/countersign/", "/governance/waivers/WV-1/"),
        ("/governance/verify/", "/governance/"),
    ],
)
def test_an_action_url_redirects_a_get_to_its_page(url: str, page: str, everyone: Client) -> None:
    response = everyone.get(url)
    assert response.status_code == 302
    assert response["Location"] == page


@pytest.mark.django_db
def test_an_action_still_refuses_other_methods(everyone: Client) -> None:
    assert everyone.put("/reviews/changes/CR-7/approve/").status_code == 405


@pytest.mark.django_db
def test_a_signed_out_get_of_an_action_asks_to_sign_in_first() -> None:
    response = Client().get("/reviews/changes/CR-7/approve/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
