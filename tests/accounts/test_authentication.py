"""A malformed Authorization header is a 401 with its reason on every endpoint, public ones too."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

#: A public endpoint (anyone), and ones that need a user.
ENDPOINTS = ["/api/v1/keys/", "/api/v1/me/", "/api/v1/artifacts/", "/api/v1/resolve/?ref=x"]


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("\xa0", "holds no scheme or token"),  # a lone non-breaking space splits into nothing
        ("\x85", "holds no scheme or token"),
        ("\xa0\xa0 \t", "holds no scheme or token"),
        ("Basic dXNlcjpwdw==", "Unsupported Authorization scheme 'Basic'"),
        ("gov_rawtoken", "Unsupported Authorization scheme"),
        ("Bearer tok\xe9n", "expected 'Bearer <token>'"),
        ("Bearer", "expected 'Bearer <token>'"),
    ],
)
def test_malformed_header_is_a_401_with_a_reason(path: str, header: str, reason: str) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    resp = client.get(path)
    assert resp.status_code == 401, (path, header, resp.content[:200])
    error = resp.json()["error"]
    assert error["code"] == "token_malformed"
    assert reason in error["message"]
    assert resp["WWW-Authenticate"] == 'Bearer realm="api"'


def test_no_header_is_still_anonymous_on_a_public_endpoint() -> None:
    assert APIClient().get("/api/v1/keys/").status_code == 200


def test_a_good_token_still_works(make_user: Any, token_client: Any) -> None:
    resp = token_client(make_user("alice")).get("/api/v1/me/")
    assert resp.status_code == 200
    assert resp.json()["username"] == "alice"
