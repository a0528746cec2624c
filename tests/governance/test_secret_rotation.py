"""Rotating Django's SECRET_KEY with SECRET_KEY_FALLBACKS keeps sessions and signed values alive."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import signing
from django.test import Client, override_settings

ROOT = Path(__file__).resolve().parents[2]
OLD = "old-secret-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJ"
NEW = "new-secret-9876543210-zyxwvutsrqponmlkjihgfedcba-JIHGFEDCBA"


@pytest.mark.django_db
def test_a_session_survives_rotation_while_the_old_key_is_a_fallback(make_user):
    alice = make_user("alice")
    visited, away = Client(), Client()
    with override_settings(SECRET_KEY=OLD, SECRET_KEY_FALLBACKS=[]):
        visited.force_login(alice)
        away.force_login(alice)
        assert visited.get("/").wsgi_request.user == alice
    with override_settings(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=[OLD]):
        # Accepted through the fallback, and Django re-signs the session with the new key.
        page = visited.get("/")
        assert page.status_code == 200
        assert page.wsgi_request.user == alice
    with override_settings(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=[]):
        assert visited.get("/").wsgi_request.user == alice
        # A session not seen while the old key was a fallback is signed out once it is dropped.
        page = away.get("/")
        assert page.status_code == 302
        assert page["Location"].startswith("/login/")
        assert not page.wsgi_request.user.is_authenticated


def test_a_signed_value_survives_rotation_while_the_old_key_is_a_fallback():
    with override_settings(SECRET_KEY=OLD, SECRET_KEY_FALLBACKS=[]):
        token = signing.dumps({"change": "CR-1"}, salt="test")
    with override_settings(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=[OLD]):
        assert signing.loads(token, salt="test") == {"change": "CR-1"}
        # New values are made with the new key only.
        assert signing.loads(signing.dumps(1, salt="test"), salt="test") == 1
    with (
        override_settings(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=[]),
        pytest.raises(signing.BadSignature),
    ):
        signing.loads(token, salt="test")


def test_api_tokens_do_not_depend_on_the_secret_key():
    from accounts.selectors import token_digest

    with override_settings(SECRET_KEY=OLD):
        before = token_digest("gov_example")
    with override_settings(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=[]):
        assert token_digest("gov_example") == before


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", []),
        ("a1", ["a1"]),
        ("a1,b2", ["a1", "b2"]),
        (" a1 ,  b2\nc3\t", ["a1", "b2", "c3"]),
    ],
)
def test_fallbacks_are_read_from_the_environment(raw, expected):
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY_FALLBACKS"}
    env["SECRET_KEY_FALLBACKS"] = raw
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'governance.settings');"
            " django.setup(); from django.conf import settings;"
            " print('|'.join(settings.SECRET_KEY_FALLBACKS))",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert [w for w in proc.stdout.strip().split("|") if w] == expected
