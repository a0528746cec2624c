"""Production mode: check --deploy is clean; unsafe configurations refuse to start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.hashers import make_password

ROOT = Path(__file__).resolve().parents[2]
REAL_SECRET = "q8Z!v2#kP0s@Lr7^wX4&mN9*eT1(bY6)uH3-jD5+cF8=gA0_zQ2"


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "ALLOWED_HOSTS", "DEBUG", "DATABASE_URL", "REDIS_URL"}
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_check_deploy_is_clean():
    proc = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        GOVERNANCE_ENV="production",
        SECRET_KEY=REAL_SECRET,
        ALLOWED_HOSTS="registry.example.com",
    )
    assert proc.returncode == 0, proc.stderr
    assert "System check identified no issues" in proc.stdout


def test_development_mode_would_fail_check_deploy():
    """Proves the check above can fail: the dev defaults are not deployable."""
    proc = manage("check", "--deploy", "--fail-level", "WARNING")
    assert proc.returncode != 0
    assert "security.W018" in proc.stderr  # DEBUG on


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ALLOWED_HOSTS": "registry.example.com"}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": REAL_SECRET}, "ALLOWED_HOSTS must name the hosts"),
        (
            {"SECRET_KEY": REAL_SECRET, "ALLOWED_HOSTS": "x.example.com", "DEBUG": "1"},
            "DEBUG cannot be on",
        ),
    ],
)
def test_production_refuses_unsafe_settings(env, message):
    proc = manage("check", GOVERNANCE_ENV="production", **env)
    assert proc.returncode != 0
    assert message in proc.stderr


def test_passwords_hash_with_argon2_by_default():
    assert settings.PASSWORD_HASHERS  # the autouse fixture swapped them; read the module
    from governance import settings as project_settings

    assert project_settings.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")


def test_argon2_hash_format(settings):
    from governance import settings as project_settings

    settings.PASSWORD_HASHERS = project_settings.PASSWORD_HASHERS
    assert make_password("x").startswith("argon2$argon2id$")


def test_embedded_default_is_sqlite_and_filesystem_broker():
    proc = manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings as s; print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL)",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["django.db.backends.sqlite3", "filesystem://"]


@pytest.mark.django_db
def test_models_and_migrations_agree():
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)  # exits 1 on drift
    assert "No changes detected" in out.getvalue()
