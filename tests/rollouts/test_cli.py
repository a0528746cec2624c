"""``manage.py rollouts`` (operating a rollout) and ``manage.py runtime`` (what serves, and the
declarations behind it): the data they change and print, and one ``error: field: reason``
line with exit status 2 on bad input."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import Tenant
from registry.models import Artifact, Version
from reviews.models import ChangeRequest
from rollouts import runtime
from rollouts.models import Application, Override, PointerMove, Rollout, Slot
from tests.reviews.conftest import PINS, publish


@pytest.fixture(autouse=True)
def _fresh_snapshots() -> None:
    runtime.cache_clear()


def run(command: str, *args: str) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def run_error(command: str, *args: str) -> tuple[int, str]:
    err = io.StringIO()
    with pytest.raises(SystemExit) as code:
        call_command(command, *args, stdout=io.StringIO(), stderr=err)
    return int(code.value.code or 0), err.getvalue()


@pytest.mark.usefixtures("acme")
def test_runtime_declares_applications_slots_and_overrides(
    platform_prompt: Artifact,
    prompt_v1: Version,
    prompt_v2: Version,
    promoted_change: ChangeRequest,
    slot: Slot,
    people: dict[str, Any],
) -> None:
    out = run("runtime", "app-create", "acme", "support-bot", "--name", "Support", "--as", "admin")
    assert out == "support-bot created (acme)\n"
    assert Application.objects.get(slug="support-bot").created_by == people["admin"]
    out = run("runtime", "slot-create", "support-bot", "answer", "--artifact", platform_prompt.path)
    assert (
        out == f"support-bot.answer created: {platform_prompt.path}, default {prompt_v1.version}\n"
    )
    assert run("runtime", "apps").splitlines() == [
        "sales-agent\tplatform\tSales agent",
        "support-bot\tacme\tSupport",
    ]
    assert run("runtime", "slots", "support-bot") == (
        f"answer\t{platform_prompt.path}\t{prompt_v1.version}\n"
    )
    out = run(
        "runtime", "override-set", "sales-agent", "qualifyLead", "acme", prompt_v2.version,
        "--reason", "early adopter", "--as", "acme_admin",
    )  # fmt: skip
    assert out == f"sales-agent.qualifyLead for acme: {prompt_v2.version}\n"
    override = Override.objects.get(slot=slot)
    assert (override.version, override.set_by, override.reason) == (
        prompt_v2,
        people["acme_admin"],
        "early adopter",
    )
    history = run("runtime", "history", "sales-agent", "qualifyLead").splitlines()
    assert len(history) == 1
    assert history[0].split("\t")[1:4] == [
        "override",
        "acme",
        f"- -> {prompt_v2.version}",
    ]
    out = run("runtime", "override-clear", "sales-agent", "qualifyLead", "acme", "--reason", "done")
    assert out == "sales-agent.qualifyLead for acme: back to the default\n"
    assert not Override.objects.exists()
    # bad input: one line naming the field, exit 2, nothing written
    draft = publish(platform_prompt, text="Draft {{ customer }}.", metadata=PINS)
    for args, field in (
        (["override-set", "sales-agent", "qualifyLead", "acme", draft.version, "--reason", "x"],
         "version"),
        (["override-set", "sales-agent", "qualifyLead", "acme", "7.7.7", "--reason", "x"],
         "version"),
        (["override-set", "sales-agent", "nope", "acme", "1.0.0", "--reason", "x"], "slot"),
        (["override-clear", "sales-agent", "qualifyLead", "acme", "--reason", "x"], "tenant"),
        (["app-create", "acme", "Bad Slug", "--name", "x"], "slug"),
        (["app-create", "acme", "bot2", "--name", "x", "--as", "outsider"], None),
        (["slot-create", "ghost-app", "x", "--artifact", platform_prompt.path], "application"),
        (["slot-create", "support-bot", "y", "--artifact", "prompt/acme"], "artifact"),
        (["show", "acme", "ghost-app"], "application"),
        (["resolve", "acme", "sales-agent", "ghost"], "slot"),
    ):  # fmt: skip
        code, err = run_error("runtime", *args)
        assert code == 2, args
        assert err.count("\n") == 1, err
        assert err.startswith("error: "), err
        if field:
            assert err.startswith(f"error: {field}: "), (args, err)
    assert not Override.objects.exists()
    assert Application.objects.count() == 2


def test_start_walk_pause_and_roll_back_a_canary_from_the_command_line(
    promoted_change: ChangeRequest,
    slot: Slot,
    platform_prompt: Artifact,
    prompt_v1: Version,
    prompt_v2: Version,
    people: dict[str, Any],
) -> None:
    out = run(
        "rollouts", "start", promoted_change.reference, "--strategy", "canary",
        "--steps", "1,5,25,50,100", "--reason", "try it", "--as", "admin",
    )  # fmt: skip
    rollout = Rollout.objects.get()
    assert out == (
        f"RO-1 of {promoted_change.reference} (canary) created: progressing step 1/5, "
        "weight 1% (revision 2)\n"
    )
    assert (rollout.steps, rollout.created_by, rollout.reason) == (
        [1_000, 5_000, 25_000, 50_000, 100_000],
        people["admin"],
        "try it",
    )
    assert run("rollouts", "advance", "RO-1", "--revision", "2") == (
        "RO-1 advanced: progressing step 2/5, weight 5% (revision 3)\n"
    )
    code, err = run_error("rollouts", "advance", "1", "--revision", "2")
    assert code == 2
    assert err.startswith("error: revision: RO-1 changed meanwhile")
    assert run("rollouts", "pause", "1", "--reason", "watch") == (
        "RO-1 paused: paused step 2/5, weight 5% (revision 4)\n"
    )
    code, err = run_error("rollouts", "advance", "RO-1")
    assert code == 2
    assert err.startswith("error: state: ")
    assert "resume it first" in err
    run("rollouts", "resume", "RO-1", "--reason", "fine")
    run("rollouts", "advance", "RO-1")
    status = run("rollouts", "status", "RO-1").splitlines()
    assert status[0] == (
        f"RO-1 [progressing] canary of {promoted_change.reference} in platform, revision 6"
    )
    assert status[1] == "  steps 1% -> 5% -> [25%] -> 50% -> 100%; weight now 25%; target live"
    assert status[2] == f"  sales-agent.qualifyLead: {prompt_v1.version} -> {prompt_v2.version}"
    moves = [line for line in status if " canary " in line and " by " in line]
    assert [m.split()[3] for m in moves] == ["1%", "5%", "25%"]
    assert run("rollouts", "status") == (
        f"RO-1\tplatform\tprogressing\tcanary\tstep 3/5\t25%\t{promoted_change.reference}\n"
    )
    assert run("rollouts", "list", "--state", "paused") == ""
    assert run("rollouts", "list", "--application", "sales-agent").startswith("RO-1\t")
    # abort and rollback must say why
    with pytest.raises(CommandError, match="--reason"):  # argparse's usage error (exit 2)
        call_command("rollouts", "rollback", "RO-1")
    assert run("rollouts", "rollback", "RO-1", "--reason", "regression", "--as", "admin") == (
        "RO-1 rolled back: rolled_back step 3/5, weight 25% (revision 7)\n"
    )
    rollout.refresh_from_db()
    assert (rollout.state, rollout.finished_by, rollout.finish_reason) == (
        "rolled_back",
        people["admin"],
        "regression",
    )
    platform_prompt.refresh_from_db()
    assert platform_prompt.active_version == prompt_v1
    assert "finished" in run("rollouts", "status", "RO-1").splitlines()[-1]


def test_start_refusals_name_the_field(
    promoted_change: ChangeRequest, platform_prompt: Artifact, promote: Callable[..., Any]
) -> None:
    ref = promoted_change.reference
    for args, field in (
        (["start", ref, "--steps", "1,x,100"], "steps"),
        (["start", ref, "--steps", "0,100"], "steps"),
        (["start", ref, "--steps", "50,5,100"], "steps"),
        (["start", ref, "--strategy", "flag", "--flag-key", "tone"], "flag_expires_at"),
        (["start", ref, "--strategy", "flag", "--flag-key", "tone", "--flag-expires", "soon"],
         "flag_expires_at"),
        (["start", ref, "--target", "paper"], "cohort"),
        (["start", "CR-2099-0001"], "reference"),
        (["advance", "RO-42"], "rollout"),
        (["status", "RO-x"], "rollout"),
        (["start", ref, "--as", "outsider"], None),
    ):  # fmt: skip
        code, err = run_error("rollouts", *args)
        assert code == 2, args
        assert err.count("\n") == 1, err
        assert err.startswith("error: "), err
        if field:
            assert err.startswith(f"error: {field}: "), (args, err)
    assert not Rollout.objects.exists()
    major = publish(platform_prompt, impact="major", text="Big {{ customer }}!", metadata=PINS)
    change = promote(major, title="Major")
    code, err = run_error("rollouts", "start", change.reference, "--strategy", "global")
    assert code == 2
    assert err.startswith("error: strategy: ")
    assert "Use a tenant, flag or canary rollout" in err


def test_flag_and_tenant_waves_from_the_command_line(
    promoted_change: ChangeRequest, slot: Slot, acme: Tenant, globex: Tenant, prompt_v2: Version
) -> None:
    out = run(
        "rollouts", "start", promoted_change.reference, "--strategy", "tenant",
        "--wave", "acme", "--wave", "globex", "--draft",
    )  # fmt: skip
    assert out.startswith("RO-1 of")
    assert "draft" in out
    assert Rollout.objects.get().steps == [["acme"], ["globex"]]
    run("rollouts", "abort", "RO-1", "--reason", "wrong plan")
    code, err = run_error("rollouts", "start", promoted_change.reference, "--strategy", "flag",
                          "--flag-key", "x", "--flag-expires", "2099-01-01")  # fmt: skip
    assert code == 2
    assert err.startswith("error: flag_expires_at: ")  # at most 90 days
    soon = (timezone.now() + timedelta(days=30)).date().isoformat()
    out = run(
        "rollouts", "start", promoted_change.reference, "--strategy", "flag",
        "--flag-key", "polite-tone", "--flag-expires", soon,
    )  # fmt: skip
    assert out.startswith("RO-2 of")
    assert run("rollouts", "flag", "RO-2", "on", "--reason", "go").startswith(
        "RO-2 flag polite-tone on: progressing"
    )
    assert Rollout.objects.get(number=2).flag_on
    status = run("rollouts", "status", "RO-2").splitlines()
    assert status[1].startswith(f"  flag polite-tone on, expires {soon}")
    answer = run("runtime", "resolve", "acme", "sales-agent", "qualifyLead")
    assert (
        answer.splitlines()[0] == f"qualifyLead: {runtime.version_ref(prompt_v2)} (TARGETING_MATCH)"
    )


def test_runtime_show_and_resolve_answer_as_the_api_and_never_serve_a_draft(
    canary_rollout: Rollout,
    people: dict[str, Any],
    platform_prompt: Artifact,
    prompt_v1: Version,
    prompt_v2: Version,
    acme: Tenant,
) -> None:
    from rollouts import services

    services.rollout_start(rollout=canary_rollout, actor=people["admin"])
    lines = run("runtime", "show", "acme", "sales-agent").splitlines()
    assert lines[0].startswith("sales-agent for acme (sequence ")
    assert lines[1].split() == ["SLOT", "VERSION", "REASON", "ROLLOUTS"]
    cells = lines[2].split()
    assert cells[:3] == [
        "qualifyLead",
        f"qualify-lead:{prompt_v1.version}#{prompt_v1.manifest_sha256[:12]}",
        "DEFAULT",
    ]
    assert " ".join(cells[3:]) == f"RO-1 canary 1% -> {prompt_v2.version}"
    document = json.loads(run("runtime", "show", "acme", "sales-agent", "--json"))
    assert document["snapshot"]["tenant"] == "acme"
    assert document["signature"]["algorithm"] == "ed25519"
    assert set(document["snapshot"]["slots"]) == {"qualifyLead"}
    # a subject in the 1% gets the canary, by its bucket (the same answer every call)
    snap = runtime.snapshot("acme", "sales-agent")
    inside = next(
        s
        for s in (f"user-{i}" for i in range(5_000))
        if runtime.resolve(snap, "qualifyLead", s).arm == "canary"
    )
    for _ in range(2):
        out = run("runtime", "resolve", "acme", "sales-agent", "qualifyLead", "--subject", inside)
        first, second = out.splitlines()[:2]
        assert first == f"qualifyLead: {runtime.version_ref(prompt_v2)} (SPLIT)"
        assert second.startswith("  rollout RO-1, step 1, arm canary, bucket ")
    data = json.loads(
        run(
            "runtime",
            "resolve",
            "acme",
            "sales-agent",
            "qualifyLead",
            "--subject",
            inside,
            "--json",
        )
    )
    assert (data["reason"], data["version"], data["rollout"], data["arm"]) == (
        "SPLIT",
        prompt_v2.version,
        "RO-1",
        "canary",
    )
    assert data["bucket"] < 1_000
    # pins: a promoted version serves STATIC; a draft never resolves
    out = run(
        "runtime", "resolve", "acme", "sales-agent", "qualifyLead", "--pin", prompt_v2.version
    )
    assert out.splitlines()[0] == f"qualifyLead: {runtime.version_ref(prompt_v2)} (STATIC)"
    draft = publish(platform_prompt, text="Draft {{ customer }}.", metadata=PINS)
    for pin in (draft.version, draft.path, runtime.version_ref(draft)):
        code, err = run_error(
            "runtime", "resolve", "acme", "sales-agent", "qualifyLead", "--pin", pin
        )
        assert code == 2, err
        assert err.startswith("error: pin: "), err
        assert draft.version in err, err
    assert PointerMove.objects.filter(to_version=draft).count() == 0
