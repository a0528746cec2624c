"""``manage.py rules lint|simulate`` on published registry versions."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command

from registry.models import Version
from tests.factories import make_artifact, publish

pytestmark = pytest.mark.django_db

INTERFACE = {
    "type": "object",
    "properties": {"intent": {"type": "string"}, "language": {"type": "string"}},
}
V1 = {
    "interface": INTERFACE,
    "default_route": "general",
    "rules": [{"if": "intent == 'billing'", "route": "billing"}],
}
V2 = {
    "interface": INTERFACE,
    "default_route": "general",
    "rules": [
        {"if": "intent == 'billing'", "route": "billing"},
        {"id": "dach", "when": {"language": "de"}, "route": "dach"},
    ],
}
BROKEN = {
    "interface": INTERFACE,
    "rules": [
        {"id": "all", "when": {}, "route": "general"},
        {"id": "billing", "when": {"intent": "billing"}, "route": "billing"},
        {"id": "typo", "when": {"intnet": "x"}, "route": "x"},
    ],
}
CORPUS = {
    "cases": [
        {"id": "bill", "input": {"intent": "billing"}, "expected": "billing"},
        {"id": "de", "input": {"intent": "other", "language": "de"}, "expected": "dach"},
        {"id": "plain", "input": {"intent": "other"}, "expected": "general"},
    ]
}


@pytest.fixture
def published(acme: Any) -> dict[str, Version]:
    rules = make_artifact(acme, "routing-ruleset", "support-routing")
    other = make_artifact(acme, "routing-ruleset", "broken-routing")
    corpus = make_artifact(acme, "golden-corpus", "triage-cases")
    return {
        "v1": publish(rules, impact="major", data=V1),
        "v2": publish(rules, data=V2),
        "broken": publish(other, impact="major", data=BROKEN),
        "corpus": publish(corpus, impact="major", data=CORPUS),
    }


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("rules", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_lint_clean_exits_0(published):
    code, out, err = run("lint", "routing-ruleset/acme/support-routing/1.1.0")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        published["v2"].pinned,
        "Lint: OK (2 rules, no problems)",
    ]


def test_lint_accepts_the_short_form_in_a_tenant_and_defaults_to_the_active_version(published):
    from registry.models import Artifact

    code, out, _ = run("lint", "support-routing@1.0.0", "--tenant", "acme")
    assert code == 0
    assert out.splitlines()[0] == published["v1"].pinned  # not the newer 1.1.0
    code, _, err = run("lint", "routing-ruleset/acme/support-routing")
    assert code == 2
    assert "has no active version" in err  # never the newest draft
    v1 = published["v1"]
    Artifact.objects.filter(pk=v1.artifact_id).update(active_version=v1)
    code, out, _ = run("lint", "routing-ruleset/acme/support-routing")
    assert code == 0
    assert out.splitlines()[0] == v1.pinned


@pytest.mark.usefixtures("published")
def test_lint_problems_exit_1_and_list_them():
    code, out, err = run("lint", "routing-ruleset/acme/broken-routing/1.0.0")
    assert (code, err) == (1, "")
    lines = out.splitlines()
    assert lines[1] == "Lint: FAILED (3 rules, 3 problems)"
    assert lines[2].startswith("  [unreachable_rule] rule billing: never reached: rule all ")
    assert lines[3].startswith("  [unreachable_rule] rule typo: ")
    assert (
        lines[4]
        == "  [unknown_field] rule typo: field 'intnet' is not declared in interface.properties"
    )


def test_simulate_against_current_exits_0_when_every_case_matches(published):
    code, out, err = run(
        "simulate",
        "routing-ruleset/acme/support-routing/1.1.0",
        "--corpus",
        "golden-corpus/acme/triage-cases/1.0.0",
        "--against",
        "routing-ruleset/acme/support-routing/1.0.0",
    )
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == (
        f"{published['v2'].pinned} on {published['corpus'].pinned} against {published['v1'].pinned}"
    )
    assert lines[1:4] == [
        "Routing simulation: OK",
        "Lint: OK (2 rules, no problems)",
        "Corpus: 3 cases, 0 mismatches against expected; against current: 1 changed (1 fixed, 0 broken)",
    ]
    assert lines[4].startswith("  CHANGED de: expected 'dach', proposed 'dach', current 'general'")
    assert lines[5] == "  2 other cases route as expected and as before."


@pytest.mark.usefixtures("published")
def test_simulate_mismatches_exit_1():
    code, out, _ = run(
        "simulate",
        "support-routing@1.0.0",
        "--corpus",
        "triage-cases@1.0.0",
        "--tenant",
        "acme",
    )
    assert code == 1
    lines = out.splitlines()
    assert lines[1] == "Routing simulation: FAILED"
    assert lines[3] == (
        "Corpus: 3 cases, 1 mismatch against expected; no current ruleset to compare"
    )
    assert lines[4] == (
        "  MISMATCH de: expected 'dach', proposed 'general';"
        ' input {"intent": "other", "language": "de"}'
    )


@pytest.mark.usefixtures("published")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lint", "routing-ruleset/acme/ghost/1.0.0"], "No version"),
        (["lint", "support-routing@1.0.0"], "tenant"),
        (["lint", "routing-ruleset/acme/support-routing/9.9.9"], "No version"),
        (
            ["lint", "golden-corpus/acme/triage-cases/1.0.0"],
            "is a golden-corpus version, not a routing-ruleset",
        ),
        (
            [
                "simulate",
                "routing-ruleset/acme/support-routing/1.1.0",
                "--corpus",
                "routing-ruleset/acme/support-routing/1.0.0",
            ],
            "is a routing-ruleset version, not a golden-corpus",
        ),
        (
            [
                "simulate",
                "routing-ruleset/acme/support-routing/1.1.0",
                "--corpus",
                "golden-corpus/acme/triage-cases/1.0.0",
                "--against",
                "routing-ruleset/acme/nope",
            ],
            "No version",
        ),
    ],
)
def test_bad_references_exit_2_with_one_line(args, message):
    code, out, err = run(*args)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith("error: "), err
    assert message in err, err
