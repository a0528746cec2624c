"""The scheduled backup's settings: a daily crontab entry for beat, refused when out of range."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

PRINT = (
    "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'governance.settings');"
    "django.setup(); from django.conf import settings as s;"
    "e = s.CELERY_BEAT_SCHEDULE['backup'];"
    "print(e['task'], sorted(e['schedule'].hour), sorted(e['schedule'].minute), s.BACKUP_DIR,"
    " s.BACKUP_KEEP, s.BACKUP_STALE_HOURS, s.DRILL_STALE_DAYS, s.REHEARSAL_STALE_DAYS)"
)


def settings_of(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PRINT],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "GOVERNANCE_VAR_DIR": "/tmp/gov-runs-settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_defaults_back_up_daily_at_0230_utc_and_keep_seven() -> None:
    done = settings_of()
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "governance.tasks.backup",
        "[2]",
        "[30]",
        "/tmp/gov-runs-settings/backups",
        "7",
        "36",
        "90",
        "90",
    ]


def test_the_environment_sets_them() -> None:
    done = settings_of(
        BACKUP_HOUR="23",
        BACKUP_MINUTE="5",
        BACKUP_DIR="/srv/backups",
        BACKUP_KEEP="14",
        BACKUP_STALE_HOURS="30",
        DRILL_STALE_DAYS="45",
        REHEARSAL_STALE_DAYS="60",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "governance.tasks.backup",
        "[23]",
        "[5]",
        "/srv/backups",
        "14",
        "30",
        "45",
        "60",
    ]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BACKUP_HOUR": "24"}, "BACKUP_HOUR must be 0-23 and BACKUP_MINUTE 0-59 (UTC)"),
        ({"BACKUP_MINUTE": "-1"}, "BACKUP_HOUR must be 0-23 and BACKUP_MINUTE 0-59 (UTC)"),
        ({"BACKUP_KEEP": "0"}, "BACKUP_KEEP must be at least 1"),
        ({"DRILL_STALE_DAYS": "0"}, "DRILL_STALE_DAYS must be at least 1"),
        ({"BACKUP_HOUR": "two"}, "BACKUP_HOUR must be an integer, got 'two'"),
    ],
)
def test_out_of_range_values_refuse_to_start(env: dict[str, str], message: str) -> None:
    done = settings_of(**env)
    assert done.returncode != 0
    assert message in done.stderr
