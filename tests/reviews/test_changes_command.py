"""``manage.py changes ...`` and ``manage.py registry rollback``: the same services from a shell."""

from __future__ import annotations

import io
import json
import sys
from typing import Any

import pytest
from django.core.management import call_command

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from registry.models import Artifact
from reviews.models import ChangeRequest


def run(*args: str, stdin: str = "", monkeypatch: Any = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    if monkeypatch is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    try:
        call_command(*args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def open_and_approve(people: dict[str, Any], ref: str, monkeypatch: Any) -> str:
    code, out, _ = run(
        "changes",
        "open",
        "--tenant",
        "acme",
        "--title",
        "Tune",
        "--rollback-plan",
        "Go back",
        "--propose",
        ref,
        "--as",
        "author",
    )
    assert code == 0, out
    reference = out.split()[0]
    assert run("changes", "submit", reference, "--as", "author")[0] == 0
    change = ChangeRequest.objects.get()
    from reviews import services

    services.evidence_attach(change=change, actor=None, version=ref, metrics={"safety": 0.9})
    code, out, _ = run("changes", "run-checks", reference)
    assert code == 0, out
    assert "pack_verification: passed" in out
    for who in ("reviewer", "admin"):
        code, out, err = run(
            "changes",
            "approve",
            reference,
            "--as",
            who,
            "--password-stdin",
            stdin="pw\n",
            monkeypatch=monkeypatch,
        )
        assert code == 0, err
    assert out.strip().endswith("now approved")
    return reference


def test_open_submit_approve_promote_rollback(
    people: dict[str, Any], prompt: Artifact, prompt_v1: Any, prompt_v2: Any, monkeypatch: Any
) -> None:
    first = open_and_approve(people, "qualify-lead@1.0.0", monkeypatch)
    assert run("changes", "promote", first, "--as", "admin")[1].strip() == f"{first} promoted"
    ChangeRequest.objects.all()  # second change
    second = open_and_approve_second(people, monkeypatch)
    run("changes", "promote", second, "--as", "admin")
    prompt.refresh_from_db()
    assert prompt.active_version == prompt_v2

    code, out, err = run(
        "registry", "rollback", "prompt/acme/qualify-lead", "--reason", "errors up"
    )
    assert code == 0, err
    assert out.strip() == (
        f"prompt/acme/qualify-lead: active 1.0.0 {prompt_v1.manifest_sha256}, "
        f"was {prompt_v2.version} (rolled back {second})"
    )
    prompt.refresh_from_db()
    assert prompt.active_version == prompt_v1
    event = Event.objects.get(kind=EventKind.ROLLOUT_ROLLED_BACK)
    assert event.payload["change"] == second
    assert event.via == "cli"


def open_and_approve_second(people: dict[str, Any], monkeypatch: Any) -> str:
    _code, out, _ = run(
        "changes",
        "open",
        "--tenant",
        "acme",
        "--title",
        "Politer",
        "--rollback-plan",
        "Go back",
        "--propose",
        "qualify-lead@1.1.0",
        "--as",
        "author",
    )
    reference = out.split()[0]
    run("changes", "submit", reference, "--as", "author")
    from reviews import selectors, services

    change = selectors.change_by_reference_unscoped(reference)
    services.evidence_attach(
        change=change, actor=None, version="qualify-lead@1.1.0", metrics={"safety": 0.95}
    )
    run("changes", "run-checks", reference)
    for who in ("reviewer", "admin"):
        run(
            "changes",
            "approve",
            reference,
            "--as",
            who,
            "--password-stdin",
            stdin="pw\n",
            monkeypatch=monkeypatch,
        )
    return reference


@pytest.mark.usefixtures("people", "prompt_v1")
def test_show_lists_slots_checks_and_blockers() -> None:
    code, out, _ = run(
        "changes",
        "open",
        "--tenant",
        "acme",
        "--title",
        "Tune",
        "--rollback-plan",
        "Go back",
        "--propose",
        "qualify-lead@1.0.0",
        "--as",
        "author",
        "--emergency",
    )
    reference = out.split()[0]
    run("changes", "submit", reference)
    code, out, _ = run("changes", "show", reference)
    assert code == 0
    assert f"{reference} [in_review] Tune EMERGENCY" in out
    assert "approval Accountable owner: MISSING" in out
    assert "approval Security officer: MISSING" in out
    assert "check pack_verification: pending" in out


@pytest.mark.usefixtures("people", "prompt_v1")
def test_wrong_password_refuses_the_sign_off(monkeypatch: Any) -> None:
    _, out, _ = run(
        "changes",
        "open",
        "--tenant",
        "acme",
        "--title",
        "Tune",
        "--rollback-plan",
        "Go back",
        "--propose",
        "qualify-lead@1.0.0",
        "--as",
        "author",
    )
    reference = out.split()[0]
    run("changes", "submit", reference)
    code, out, err = run(
        "changes",
        "approve",
        reference,
        "--as",
        "reviewer",
        "--password-stdin",
        stdin="wrong\n",
        monkeypatch=monkeypatch,
    )
    assert code == 2
    assert err.strip() == "error: The password given on standard input is not that user's."
    assert not Event.objects.filter(kind=EventKind.APPROVAL_GRANTED).exists()


@pytest.mark.usefixtures("people", "prompt_v1")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("changes", "show", "CR-1999-0001"), "error: reference: No change request CR-1999-0001."),
        (("registry", "rollback", "prompt/acme/nope", "--reason", "x"), "error:"),
        (
            ("registry", "rollback", "prompt/acme/qualify-lead", "--reason", "x"),
            "error: artifact: prompt/acme/qualify-lead has no active version to roll back from.",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: Any, message: str) -> None:
    code, _, err = run(*args)
    assert code == 2
    assert err.startswith(message)
    assert err.count("\n") <= 1


@pytest.mark.usefixtures("people", "prompt_v1")
def test_export_writes_a_signed_record(tmp_path: Any) -> None:
    _, out, _ = run(
        "changes",
        "open",
        "--tenant",
        "acme",
        "--title",
        "Tune",
        "--rollback-plan",
        "Go back",
        "--propose",
        "qualify-lead@1.0.0",
        "--as",
        "author",
    )
    reference = out.split()[0]
    target = tmp_path / "record.json"
    code, out, _ = run("changes", "export", reference, "--out", str(target))
    assert code == 0
    assert out.strip() == f"Wrote {reference} to {target}"
    data = json.loads(target.read_text())
    assert data["record"]["change_id"] == reference
    assert len(data["signature"]) == 128


@pytest.mark.usefixtures("db")
def test_seed_demo_has_changes_in_every_state() -> None:
    from reviews import selectors
    from reviews.choices import CheckStatus

    for _ in range(2):  # idempotent
        call_command("seed_demo", "--quiet-logins", stdout=io.StringIO())
    changes = {c.title: c for c in ChangeRequest.objects.all()}
    assert len(changes) == 19
    statuses = sorted(c.status for c in changes.values())
    # 3 in the review story, 6 behind the rollouts (seed_demo._seed_rollouts), 1 in the
    # lifecycle story (governance/demo/lifecycle.py: its other 3 stop at approved, in review
    # and draft)
    assert statuses.count("promoted") == 10
    assert statuses.count("rejected") == 1
    failing = changes["Route German tickets to the DACH queue"]
    assert selectors.check_summary(failing).runs["rules_simulation"].status == CheckStatus.FAILED
    from accounts.models import User

    waiting = {
        name: [c.title for c, _ in selectors.waiting_for(User.objects.get(username=name))]
        for name in ("acme-reviewer", "acme-admin", "acme-privacy", "acme-security", "acme-author")
    }
    assert "Shorter lead qualification answers" in waiting["acme-reviewer"]
    assert waiting["acme-privacy"] == ["Stop echoing personal details"]
    # the emergency change as security officer; the refund approver's as its deputy owner
    assert sorted(waiting["acme-security"]) == [
        "Calibrate the refund approver's scores",
        "Hotfix: stop quoting prices",
    ]
    assert "Hotfix: stop quoting prices" in waiting["acme-author"]  # the accountable owner
    reply = Artifact.objects.get(slug="support-reply")
    assert reply.active_version is not None
    assert reply.active_version.version == "1.1.0"
