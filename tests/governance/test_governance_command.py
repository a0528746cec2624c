"""``manage.py governance ...``: waivers, deprecation, retirement and the sweep from a shell."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.models import Notification
from registry.models import Deprecation, Retirement
from reviews.waivers.models import Waiver
from tests.reviews.conftest import (
    _builtin_classes,
    open_change,
    people,
    prompt,
    prompt_v1,
    prompt_v2,
)

__all__ = ["_builtin_classes", "open_change", "people", "prompt", "prompt_v1", "prompt_v2"]

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)
ART = "prompt/acme/qualify-lead"


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("governance", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    except CommandError as exc:  # argparse's own refusals, raised before the command runs
        code = 2
        err.write(f"error: {exc}")
    return code, out.getvalue(), err.getvalue()


def day(delta: timedelta) -> str:
    return f"{timezone.now() + delta:%Y-%m-%d}"


def grant(*extra: str, expires: str | None = None) -> tuple[int, str, str]:
    return run(
        "waiver",
        "grant",
        "--tenant",
        "acme",
        "--check",
        "offline_evaluation",
        "--owner",
        "reviewer",
        "--justification",
        "Scoring artefact of the new eval set.",
        "--mitigation",
        "Human review of 5% of replies.",
        "--expires",
        expires or day(20 * DAY),
        "--as",
        "admin",
        *(extra or ("--artifact", ART)),
    )


# --- waivers --------------------------------------------------------------------------------


def test_grant_prints_the_reference_and_records_it(people: dict[str, Any], prompt: Any) -> None:
    code, out, err = grant("--artifact", ART, "--link", "https://tickets.example.com/SEC-1")
    assert code == 0, err
    waiver = Waiver.objects.get()
    assert out.startswith(f"{waiver.reference} granted: offline_evaluation on {ART}")
    assert "now active" in out
    assert waiver.granted_by == people["admin"]
    assert waiver.owner == people["reviewer"]
    assert waiver.advisory_links == ["https://tickets.example.com/SEC-1"]
    assert waiver.expires_at.hour == 0
    assert waiver.expires_at.date() == (timezone.now() + 20 * DAY).date()
    event = Event.objects.get(kind=EventKind.WAIVER_GRANTED)
    assert event.actor_name == "admin"
    assert event.via == "cli"


@pytest.mark.usefixtures("people")
def test_grant_on_a_change_with_a_full_timestamp(open_change: Any, prompt_v1: Any) -> None:
    change = open_change(prompt_v1)
    when = (timezone.now() + 10 * DAY).replace(microsecond=0).isoformat()
    code, out, err = grant("--change", change.reference, expires=when)
    assert code == 0, err
    waiver = Waiver.objects.get()
    assert waiver.change == change
    assert change.reference in out
    assert waiver.expires_at.isoformat() == when


@pytest.mark.usefixtures("people", "prompt")
@pytest.mark.parametrize(
    ("args", "expires", "needle"),
    [
        (("--artifact", ART), "2001-01-01", "expires_at"),
        (("--artifact", ART), "someday", "expires"),
        (("--artifact", ART), "2999-01-01", "expires_at"),
        (("--artifact", "prompt/acme/nope"), None, "artifact"),
        (("--artifact", "garbage ref"), None, "artifact"),
        (("--change", "CR-2026-9999"), None, "change"),
        (("--artifact", ART, "--metric", "p95"), None, "metric"),
        (("--artifact", ART, "--link", "ftp://nope"), None, "advisory_links"),
        (("--artifact", ART, "--change", "CR-2026-0001"), None, "not allowed with"),
        (("--artifact", ART, "--justification", " "), None, "justification"),
    ],
)
def test_bad_grants_are_one_line_and_write_nothing(
    args: Any, expires: str | None, needle: str
) -> None:
    code, out, err = grant(*args, expires=expires)
    assert code == 2
    assert out == ""
    assert err.startswith("error: "), err
    assert needle in err, err
    assert err.count("\n") <= 1, err
    assert not Waiver.objects.exists()


@pytest.mark.usefixtures("people", "prompt")
def test_grant_checks_the_actor() -> None:
    code, _, err = run(
        "waiver",
        "grant",
        "--tenant",
        "acme",
        "--check",
        "policy",
        "--artifact",
        ART,
        "--owner",
        "reviewer",
        "--justification",
        "j",
        "--mitigation",
        "m",
        "--expires",
        day(5 * DAY),
        "--as",
        "author",
    )
    assert code == 2
    assert "administrator" in err
    code, _, err = run(
        "waiver",
        "grant",
        "--tenant",
        "acme",
        "--check",
        "policy",
        "--artifact",
        ART,
        "--owner",
        "reviewer",
        "--justification",
        "j",
        "--mitigation",
        "m",
        "--expires",
        day(5 * DAY),
        "--as",
        "ghost",
    )
    assert code == 2
    assert "ghost" in err
    assert not Waiver.objects.exists()


def test_renew_revoke_and_countersign(people: dict[str, Any], prompt: Any) -> None:
    grant()
    old = Waiver.objects.get()
    code, out, err = run(
        "waiver", "renew", old.reference, "--expires", day(40 * DAY), "--as", "admin"
    )
    assert code == 0, err
    new = Waiver.objects.exclude(pk=old.pk).get()
    assert new.renews == old
    assert f"{new.reference} renews {old.reference}" in out
    code, _, err = run("waiver", "renew", old.reference, "--expires", day(9 * DAY), "--as", "admin")
    assert code == 2
    assert "already renewed" in err
    code, out, err = run("waiver", "revoke", new.reference, "--reason", "Fixed.", "--as", "admin")
    assert code == 0, err
    assert f"{new.reference} revoked" in out
    assert "now revoked" in out
    new.refresh_from_db()
    assert new.revoke_reason == "Fixed."
    assert new.revoked_by == people["admin"]
    code, _, err = run("waiver", "revoke", new.reference, "--reason", "again", "--as", "admin")
    assert code == 2
    assert "already revoked" in err
    code, _, err = run("waiver", "revoke", "WV-2026-9999", "--reason", "x", "--as", "admin")
    assert code == 2
    assert "No waiver" in err

    code, out, err = grant("--artifact", ART, "--check", "policy")  # the last --check counts
    assert code == 0, err
    assert "needs a security officer's countersignature" in out
    security = Waiver.objects.get(check_kind="policy")
    code, _, err = run("waiver", "countersign", security.reference, "--as", "admin")
    assert code == 2
    assert "security officer" in err
    code, out, err = run("waiver", "countersign", security.reference, "--as", "security")
    assert code == 0, err
    assert "countersigned by security" in out
    assert "now active" in out
    assert Event.objects.filter(kind=EventKind.WAIVER_COUNTERSIGNED).count() == 1


@pytest.mark.usefixtures("people", "prompt")
def test_waivers_lists_by_state_and_filters() -> None:
    grant(expires=day(40 * DAY))
    grant(expires=day(3 * DAY))
    later, soon = Waiver.objects.order_by("number")
    code, out, err = run("waivers")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["REFERENCE", "STATE", "CHECK", "SCOPE", "OWNER", "EXPIRES"]
    assert lines[1].split()[:5] == [
        soon.reference,
        "expiring_soon",
        "offline_evaluation",
        ART,
        "reviewer",
    ]
    assert lines[2].split()[:2] == [later.reference, "active"]
    code, out, _ = run("waivers", "--expiring-within", "7")
    assert later.reference not in out
    assert soon.reference in out
    code, out, _ = run("waivers", "--state", "active", "--tenant", "acme")
    assert later.reference in out
    assert soon.reference not in out
    code, out, _ = run("waivers", "--state", "revoked")
    assert out.strip() == "No waivers."
    code, out, _ = run("waivers", "--json")
    rows = json.loads(out)
    assert [(r["reference"], r["state"]) for r in rows] == [
        (soon.reference, "expiring_soon"),
        (later.reference, "active"),
    ]
    assert rows[0]["scope"] == {"change": None, "change_revision": None, "artifacts": [ART]}


@pytest.mark.usefixtures("db")
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--expiring-within", "-1"), "expiring_within"),
        (("--expiring-within", "soon"), "invalid int"),
        (("--state", "sleepy"), "invalid choice"),
        (("--tenant", "nope"), "No tenant"),
    ],
)
def test_bad_list_options_are_one_line(args: Any, needle: str) -> None:
    code, out, err = run("waivers", *args)
    assert code == 2
    assert needle in err
    assert out == ""


# --- deprecation and retirement -------------------------------------------------------------


def test_deprecate_and_retire(people: dict[str, Any], prompt_v1: Any, prompt_v2: Any) -> None:
    code, out, err = run(
        "deprecate",
        prompt_v1.path,
        "--replacement",
        "1.1.0",
        "--remove-after",
        "30",
        "--reason",
        "Politer wording.",
        "--as",
        "admin",
    )
    assert code == 0, err
    assert out.startswith(f"{prompt_v1.path} deprecated; use {prompt_v2.pinned}")
    dep = Deprecation.objects.get()
    assert (dep.replacement, dep.reason, dep.deprecated_by) == (
        prompt_v2,
        "Politer wording.",
        people["admin"],
    )
    assert dep.remove_after - dep.deprecated_at == 30 * DAY
    code, out, err = run("retire", prompt_v1.path, "--rationale", "Superseded.", "--as", "admin")
    assert code == 0, err
    assert "retired (simulation-only)" in out
    assert Retirement.objects.get().rationale == "Superseded."


@pytest.mark.usefixtures("people")
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--replacement", "1.1.0", "--remove-after", "1"), "remove_after"),
        (("--replacement", "1.1.0", "--remove-after", "x"), "invalid int"),
        (("--replacement", "9.9.9", "--remove-after", "30"), "replacement"),
        (("--replacement", "1.0.0", "--remove-after", "30"), "replacement"),
        (("--replacement", "1.1.0", "--remove-after", "30", "--as", "author"), "administrator"),
        (("--replacement", "1.1.0", "--remove-after", "30", "--reason", " "), "reason"),
    ],
)
def test_bad_deprecations_are_one_line_and_write_nothing(
    prompt_v1: Any, prompt_v2: Any, args: Any, needle: str
) -> None:
    base = ["deprecate", prompt_v1.path, "--reason", "r", "--as", "admin"]
    code, out, err = run(*base, *args)
    assert out == ""
    assert code == 2, err
    assert needle in err, err
    assert err.count("\n") <= 1, err
    assert not Deprecation.objects.exists()


@pytest.mark.usefixtures("people")
def test_deprecate_unknown_version_and_retire_without_rights(
    prompt_v1: Any, prompt_v2: Any
) -> None:
    code, _, err = run(
        "deprecate",
        f"{ART}/7.0.0",
        "--replacement",
        "1.1.0",
        "--remove-after",
        "30",
        "--reason",
        "r",
        "--as",
        "admin",
    )
    assert code == 2
    assert "No version" in err
    code, _, err = run("retire", prompt_v1.path, "--rationale", "x", "--as", "reviewer")
    assert code == 2
    assert "administrator" in err
    assert not Retirement.objects.exists()


# --- the sweep ------------------------------------------------------------------------------


@pytest.mark.usefixtures("people")
def test_sweep_prints_its_counts_and_is_idempotent(prompt_v1: Any, prompt_v2: Any) -> None:
    grant(expires=day(3 * DAY))
    run(
        "deprecate",
        prompt_v1.path,
        "--replacement",
        "1.1.0",
        "--remove-after",
        "7",
        "--reason",
        "r",
        "--as",
        "admin",
    )
    later = (timezone.now() + 8 * DAY).isoformat()
    code, out, err = run("sweep", "--now", later)
    assert code == 0, err
    counts = dict(line.split(": ") for line in out.splitlines())
    assert counts["removed versions"] == "1"
    assert int(counts["waiver alerts"]) >= 2  # owner and administrators, expired
    assert counts["postmortem reminders"] == "0"
    assert Deprecation.objects.get().removed_at is not None
    code, out, _ = run("sweep", "--now", later)
    assert code == 0
    assert all(line.endswith(": 0") for line in out.splitlines())
    assert Notification.objects.filter(dedupe_key__endswith=":expired").exists()
    code, out, _ = run("sweep")
    assert code == 0
    assert "waiver alerts" in out


@pytest.mark.usefixtures("db")
def test_usage_errors_from_a_shell_exit_2() -> None:
    import subprocess
    import sys
    from pathlib import Path

    manage = Path(__file__).resolve().parents[2] / "manage.py"
    done = subprocess.run(
        [sys.executable, str(manage), "governance", "waivers", "--state", "sleepy"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "invalid choice: 'sleepy'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.usefixtures("db")
def test_sweep_refuses_a_bad_moment() -> None:
    code, out, err = run("sweep", "--now", "yesterday-ish")
    assert code == 2
    assert "now" in err
    assert out == ""
