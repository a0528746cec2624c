"""``reviews.rules``: lint, route and simulate routing rulesets (no database)."""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

import pytest

from reviews import rules

INTERFACE = {
    "type": "object",
    "properties": {
        "intent": {"type": "string"},
        "language": {"type": "string"},
        "tier": {"type": "string"},
        "priority": {"type": "integer"},
        "customer": {"type": "object", "properties": {"tier": {"type": "string"}}},
    },
}

RULESET: dict[str, Any] = {
    "interface": INTERFACE,
    "default_route": "general",
    "rules": [
        {
            "id": "billing-dach",
            "when": {
                "intent": "billing",
                "language": {"in": ["de", "at"]},
                "tier": {"not": "free"},
            },
            "route": "billing-dach",
        },
        {"id": "billing", "when": {"intent": "billing"}, "route": "billing"},
        {"if": "language == 'de' and priority != 1", "route": "dach"},
    ],
}


def codes(data: Any) -> list[tuple[str, str | None]]:
    return [(p.code, p.rule) for p in rules.lint(data).problems]


# --- routing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"intent": "billing", "language": "de", "tier": "pro"}, "billing-dach"),
        ({"intent": "billing", "language": "at"}, "billing-dach"),  # absent tier is not "free"
        ({"intent": "billing", "language": "de", "tier": "free"}, "billing"),
        ({"intent": "billing", "language": "fr"}, "billing"),
        ({"intent": "sales", "language": "de", "priority": 2}, "dach"),
        ({"intent": "sales", "language": "de"}, "dach"),
        ({"intent": "sales", "language": "de", "priority": 1}, "general"),
        ({"intent": "sales", "language": "de", "priority": 1.0}, "general"),  # 1 == 1.0
        ({}, "general"),
    ],
)
def test_route_takes_the_first_matching_rule_then_the_default(data, expected):
    assert rules.route(RULESET, data) == expected


def test_route_without_default_is_none_and_bad_content_does_not_raise():
    ruleset = {"rules": [{"when": {"intent": "billing"}, "route": "billing"}]}
    assert rules.route(ruleset, {"intent": "billing"}) == "billing"
    assert rules.route(ruleset, {"intent": "sales"}) is None
    assert rules.route("not a ruleset", {"intent": "billing"}) is None
    assert rules.route({"rules": "nope", "default_route": "general"}, {}) == "general"
    assert rules.route(ruleset, "not an input") is None  # type: ignore[arg-type]


def test_route_skips_malformed_rules_that_lint_reports():
    ruleset = {
        "rules": [
            {"when": {"intent": "billing"}},  # no route
            {"if": "intent = 'billing'", "route": "broken"},
            {"when": {"intent": "billing"}, "route": "billing"},
        ]
    }
    assert rules.route(ruleset, {"intent": "billing"}) == "billing"
    assert codes(ruleset) == [("schema", "#1"), ("schema", "#2")]


def test_booleans_and_numbers_and_null_are_distinct_values():
    ruleset = {
        "rules": [
            {"when": {"vip": True}, "route": "vip"},
            {"when": {"vip": 1}, "route": "one"},
            {"when": {"vip": None}, "route": "unknown"},
        ]
    }
    assert rules.route(ruleset, {"vip": True}) == "vip"
    assert rules.route(ruleset, {"vip": 1}) == "one"
    assert rules.route(ruleset, {"vip": None}) == "unknown"
    assert rules.route(ruleset, {}) == "unknown"  # absent counts as null
    assert rules.route(ruleset, {"vip": "yes"}) is None
    assert rules.lint(ruleset).ok


def test_operators_and_dotted_fields():
    ruleset = {
        "interface": INTERFACE,
        "rules": [
            {"when": {"customer.tier": {"eq": "gold"}}, "route": "gold"},
            {"when": {"tier": {"not_in": ["free", "trial"]}}, "route": "paid"},
            {"when": {"tier": {"not": ["free"]}}, "route": "trial"},
        ],
    }
    assert rules.lint(ruleset).problems == []
    assert rules.route(ruleset, {"customer": {"tier": "gold"}}) == "gold"
    assert rules.route(ruleset, {"customer.tier": "gold"}) == "gold"
    assert rules.route(ruleset, {"tier": "pro"}) == "paid"
    assert rules.route(ruleset, {"tier": "trial"}) == "trial"
    assert rules.route(ruleset, {"tier": "free"}) is None


# --- the legacy "if" form --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "data", "matches"),
    [
        ("intent == 'billing'", {"intent": "billing"}, True),
        ("intent == 'billing'", {"intent": "sales"}, False),
        ('intent == "billing"', {"intent": "billing"}, True),
        ("intent != 'billing'", {}, True),
        ("priority == 2", {"priority": 2}, True),
        ("priority == 2", {"priority": "2"}, False),
        ("score == -1.5", {"score": -1.5}, True),
        ("intent == 'a and b' and x == 1", {"intent": "a and b", "x": 1}, True),
        ("a == 'x'  and  b != 'y'", {"a": "x", "b": "z"}, True),
        ("a == 'x' and b != 'y'", {"a": "x", "b": "y"}, False),
    ],
)
def test_legacy_if_parses_into_conditions(text, data, matches):
    ruleset = {"rules": [{"if": text, "route": "hit"}]}
    assert rules.lint(ruleset).ok
    assert rules.route(ruleset, data) == ("hit" if matches else None)


@pytest.mark.parametrize(
    "text",
    [
        "intent = 'billing'",
        "intent == billing",
        "intent == 'billing' or x == 1",
        "intent == 'billing' and",
        "intent == 'billing'and x == 1",
        "",
        "priority == 2x",
        "len(intent) == 3",
    ],
)
def test_unparseable_legacy_if_is_a_schema_problem_naming_the_rule(text):
    report = rules.lint({"rules": [{"id": "legacy", "if": text, "route": "x"}]})
    assert [(p.code, p.rule, p.position) for p in report.problems] == [("schema", "legacy", 0)]
    assert "cannot parse" in report.problems[0].message
    assert json.dumps(text) in report.problems[0].message


def test_legacy_and_when_forms_of_the_same_condition_are_duplicates():
    ruleset = {
        "rules": [
            {"if": "intent == 'billing' and language == 'de'", "route": "billing"},
            {"when": {"language": "de", "intent": "billing"}, "route": "billing"},
            {"when": {"language": {"in": ["de"]}, "intent": "billing"}, "route": "dach"},
        ]
    }
    assert codes(ruleset) == [("duplicate_rule", "#2"), ("conflicting_rule", "#3")]


def test_contradictory_legacy_clauses_never_match():
    ruleset = {"rules": [{"if": "intent == 'a' and intent == 'b'", "route": "x"}]}
    report = rules.lint(ruleset)
    assert report.codes() == ["unreachable_rule"]
    assert "contradict" in report.problems[0].message
    assert rules.route(ruleset, {"intent": "a"}) is None
    # A repeated field that narrows rather than contradicts is fine.
    narrowing = {"rules": [{"if": "intent != 'a' and intent == 'b'", "route": "x"}]}
    assert rules.lint(narrowing).ok
    assert rules.route(narrowing, {"intent": "b"}) == "x"


# --- lint ------------------------------------------------------------------------------


def test_clean_ruleset_lints_ok():
    report = rules.lint(RULESET)
    assert report.ok
    assert report.problems == []
    assert report.rule_count == 3
    assert report.text() == "Lint: OK (3 rules, no problems)"
    assert report.to_dict() == {"ok": True, "rule_count": 3, "problems": []}


def test_seed_demo_rulesets_lint_clean():
    interface = {
        "type": "object",
        "properties": {
            "intent": {"type": "string"},
            "priority": {"type": "integer"},
            "language": {"type": "string"},
        },
        "required": ["intent"],
    }
    ruleset = {
        "interface": interface,
        "rules": [
            {"if": "intent == 'billing'", "route": "billing"},
            {"if": "language == 'de'", "route": "dach"},
        ],
    }
    assert rules.lint(ruleset).ok
    assert rules.route(ruleset, {"intent": "billing", "language": "de"}) == "billing"
    assert rules.route(ruleset, {"intent": "other", "language": "de"}) == "dach"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (None, [("schema", None)]),
        ([], [("schema", None)]),
        ({}, [("schema", None)]),
        ({"rules": {"a": 1}}, [("schema", None)]),
        ({"rules": [], "default_route": ""}, [("schema", None)]),
        ({"rules": [], "interface": "object"}, [("schema", None)]),
        ({"rules": [], "interface": {"properties": []}}, [("schema", None)]),
        ({"rules": ["billing"]}, [("schema", "#1")]),
        ({"rules": [{"when": {}}]}, [("schema", "#1")]),
        ({"rules": [{"when": {}, "route": "  "}]}, [("schema", "#1")]),
        ({"rules": [{"route": "x"}]}, [("schema", "#1")]),
        ({"rules": [{"route": "x", "when": {}, "if": "a == 1"}]}, [("schema", "#1")]),
        ({"rules": [{"route": "x", "when": []}]}, [("schema", "#1")]),
        ({"rules": [{"route": "x", "when": {"a": ["x"]}}]}, [("schema", "#1")]),
        ({"rules": [{"route": "x", "when": {"a": {"in": []}}}]}, [("schema", "#1")]),
        ({"rules": [{"route": "x", "when": {"a": {"in": [{"b": 1}]}}}]}, [("schema", "#1")]),
        ({"rules": [{"route": "x", "when": {"a": {"like": "x"}}}]}, [("schema", "#1")]),
        ({"rules": [{"route": "x", "when": {"a": {"in": ["x"], "not": "y"}}}]}, [("schema", "#1")]),
        ({"rules": [{"route": "x", "when": {"a": {"eq": [1]}}}]}, [("schema", "#1")]),
        ({"rules": [{"route": "x", "if": 3}]}, [("schema", "#1")]),
        ({"rules": [{"id": "", "route": "x", "when": {}}]}, [("schema", "#1")]),
        ({"rules": [], "default_route": "general"}, []),
        ({"rules": [{"route": "x", "when": {}, "description": "fine"}]}, []),
    ],
)
def test_shape_problems(data, expected):
    report = rules.lint(data)
    assert codes(data) == expected
    assert report.ok is (expected == [])


def test_every_shape_error_in_a_rule_is_listed():
    report = rules.lint({"rules": [{"id": 7, "when": "x"}]})
    messages = [p.message for p in report.problems]
    assert [p.code for p in report.problems] == ["schema"] * 3
    assert any('"route"' in m for m in messages)
    assert any('"id"' in m for m in messages)
    assert any('"when"' in m for m in messages)


def test_duplicate_ids():
    ruleset = {
        "rules": [
            {"id": "a", "when": {"x": "1"}, "route": "r1"},
            {"id": "b", "when": {"x": "2"}, "route": "r2"},
            {"id": "a", "when": {"x": "3"}, "route": "r3"},
        ]
    }
    report = rules.lint(ruleset)
    assert [(p.code, p.rule, p.position) for p in report.problems] == [("duplicate_id", "#3", 2)]
    assert "'a'" in report.problems[0].message


def test_duplicate_and_conflicting_rules_name_the_earlier_rule():
    ruleset = {
        "rules": [
            {
                "id": "first",
                "when": {"intent": "billing", "tier": {"in": ["a", "b"]}},
                "route": "x",
            },
            {
                "id": "same",
                "when": {"tier": {"in": ["b", "a", "a"]}, "intent": "billing"},
                "route": "x",
            },
            {
                "id": "other",
                "when": {"intent": "billing", "tier": {"in": ["a", "b"]}},
                "route": "y",
            },
        ]
    }
    report = rules.lint(ruleset)
    assert [(p.code, p.rule) for p in report.problems] == [
        ("duplicate_rule", "same"),
        ("conflicting_rule", "other"),
    ]
    assert "rule first" in report.problems[0].message
    assert "'x'" in report.problems[1].message
    assert "'y'" in report.problems[1].message


@pytest.mark.parametrize(
    ("earlier", "later", "unreachable"),
    [
        ({}, {"intent": "billing"}, True),
        ({"intent": "billing"}, {"intent": "billing", "language": "de"}, True),
        ({"intent": {"in": ["a", "b"]}}, {"intent": "a"}, True),
        ({"intent": {"in": ["a", "b"]}}, {"intent": {"in": ["a", "c"]}}, False),
        ({"tier": {"not": "free"}}, {"tier": "pro"}, True),
        ({"tier": {"not": "free"}}, {"tier": "free"}, False),
        ({"tier": {"not": "free"}}, {"tier": {"not_in": ["free", "trial"]}}, True),
        ({"tier": {"not_in": ["free", "trial"]}}, {"tier": {"not": "free"}}, False),
        ({"tier": "pro"}, {"tier": {"not": "free"}}, False),
        ({"intent": "billing", "language": "de"}, {"intent": "billing"}, False),
        ({"intent": "billing"}, {"language": "de"}, False),
    ],
)
def test_unreachable_when_an_earlier_rule_is_at_least_as_general(earlier, later, unreachable):
    ruleset = {"rules": [{"when": earlier, "route": "a"}, {"when": later, "route": "b"}]}
    assert codes(ruleset) == ([("unreachable_rule", "#2")] if unreachable else [])


def test_catch_all_makes_every_later_rule_unreachable():
    ruleset = {
        "rules": [
            {"id": "billing", "when": {"intent": "billing"}, "route": "billing"},
            {"id": "everything", "when": {}, "route": "general"},
            {"id": "sales", "when": {"intent": "sales"}, "route": "sales"},
            {"id": "de", "if": "language == 'de'", "route": "dach"},
        ]
    }
    report = rules.lint(ruleset)
    assert [(p.code, p.rule) for p in report.problems] == [
        ("unreachable_rule", "sales"),
        ("unreachable_rule", "de"),
    ]
    assert all("rule everything" in p.message for p in report.problems)


def test_unknown_fields_against_the_interface():
    ruleset = {
        "interface": INTERFACE,
        "rules": [
            {"id": "a", "when": {"intnet": "billing", "language": "de"}, "route": "x"},
            {"id": "b", "if": "customer.tier == 'gold' and customer.sector == 'x'", "route": "y"},
            {"id": "c", "when": {"customer.tier.code": "g"}, "route": "z"},
        ],
    }
    report = rules.lint(ruleset)
    assert [(p.code, p.rule) for p in report.problems] == [
        ("unknown_field", "a"),
        ("unknown_field", "b"),
    ]
    assert "'intnet'" in report.problems[0].message
    assert "'customer.sector'" in report.problems[1].message
    # Without an interface (or without declared properties) any field is accepted.
    assert rules.lint({**ruleset, "interface": None}).ok
    assert rules.lint({**ruleset, "interface": {"type": "object"}}).ok


def test_problems_are_ordered_ruleset_first_then_by_rule_and_serialise():
    ruleset = {
        "default_route": 3,
        "interface": INTERFACE,
        "rules": [
            {"when": {}, "route": "all"},
            {"when": {"bogus": 1}, "route": "never"},
        ],
    }
    report = rules.lint(ruleset)
    assert [(p.code, p.rule, p.position) for p in report.problems] == [
        ("schema", None, None),
        ("unreachable_rule", "#2", 1),
        ("unknown_field", "#2", 1),
    ]
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is False
    assert data["rule_count"] == 2
    assert [p["code"] for p in data["problems"]] == ["schema", "unreachable_rule", "unknown_field"]
    lines = report.text().splitlines()
    assert lines[0] == "Lint: FAILED (2 rules, 3 problems)"
    assert lines[1].startswith("  [schema] ruleset: ")
    assert lines[2].startswith("  [unreachable_rule] rule #2: never reached: rule #1 ")


# --- properties: the shadowing analysis is sound on a small complete domain ---------------

FIELDS = ("a", "b")
VALUES = ("x", "y", "z")
# "other" stands for every value no rule names, None for absent: together with VALUES they
# cover every way an input can meet these conditions, so checking them all is exhaustive.
DOMAIN = (*VALUES, "other", None)


def random_condition(rng: random.Random) -> dict[str, Any]:
    condition: dict[str, Any] = {}
    for name in FIELDS:
        kind = rng.choice(["absent", "absent", "eq", "in", "not", "not_in"])
        some = rng.sample(VALUES, rng.randint(1, 2))
        if kind == "eq":
            condition[name] = some[0]
        elif kind == "in":
            condition[name] = {"in": some}
        elif kind == "not":
            condition[name] = {"not": some[0]}
        elif kind == "not_in":
            condition[name] = {"not_in": some}
    return condition


def inputs() -> list[dict[str, Any]]:
    return [
        {k: v for k, v in zip(FIELDS, combo, strict=True) if v is not None}
        for combo in itertools.product(DOMAIN, repeat=len(FIELDS))
    ]


def matching(condition: dict[str, Any]) -> set[int]:
    probe = {"rules": [{"when": condition, "route": "hit"}]}
    return {i for i, data in enumerate(inputs()) if rules.route(probe, data) == "hit"}


@pytest.mark.parametrize("seed", range(40))
def test_shadowed_rules_are_exactly_those_an_earlier_rule_covers(seed):
    rng = random.Random(seed)
    conditions = [random_condition(rng) for _ in range(rng.randint(2, 6))]
    ruleset = {"rules": [{"when": c, "route": f"r{i}"} for i, c in enumerate(conditions)]}
    flagged = {
        p.position
        for p in rules.lint(ruleset).problems
        if p.code in ("unreachable_rule", "duplicate_rule", "conflicting_rule")
    }
    sets = [matching(c) for c in conditions]
    for j in range(len(conditions)):
        covered = any(sets[j] <= sets[i] for i in range(j))
        assert (j in flagged) == covered, (j, conditions)
        if j in flagged:  # sound: the rule really is never the one that routes
            for data in inputs():
                assert rules.route(ruleset, data) != f"r{j}" or not sets[j]


@pytest.mark.parametrize("seed", range(20))
def test_a_rule_after_a_catch_all_is_always_reported(seed):
    rng = random.Random(seed)
    before = [random_condition(rng) for _ in range(rng.randint(0, 3))]
    after = [random_condition(rng) for _ in range(rng.randint(1, 4))]
    conditions = [*before, {}, *after]
    ruleset = {"rules": [{"when": c, "route": f"r{i}"} for i, c in enumerate(conditions)]}
    flagged = {
        p.position
        for p in rules.lint(ruleset).problems
        if p.code in ("unreachable_rule", "duplicate_rule", "conflicting_rule")
    }
    assert set(range(len(before) + 1, len(conditions))) <= flagged


# --- simulation ------------------------------------------------------------------------

CURRENT = {
    "default_route": "general",
    "rules": [{"if": "intent == 'billing'", "route": "billing"}],
}
PROPOSED = {
    "default_route": "general",
    "rules": [
        {"when": {"intent": "billing"}, "route": "billing"},
        {"when": {"language": "de"}, "route": "dach"},
    ],
}
CORPUS = {
    "cases": [
        {"id": "bill", "input": {"intent": "billing"}, "expected": "billing"},
        {"id": "de", "input": {"intent": "other", "language": "de"}, "expected": "dach"},
        {"input": {"intent": "sales", "language": "de"}, "expected": "general"},
        {"input": {"intent": "sales"}, "expected": "general"},
    ]
}


def test_simulate_against_current_counts_fixed_broken_and_changed():
    report = rules.simulate(PROPOSED, CORPUS, CURRENT)
    assert report.summary == {
        "cases": 4,
        "mismatches": 1,
        "changed_vs_current": 2,
        "fixed": 1,
        "broken": 1,
    }
    assert report.ok is False  # one mismatch
    by_id = {c.id: c for c in report.cases}
    assert list(by_id) == ["bill", "de", "#3", "#4"]
    assert (by_id["de"].proposed, by_id["de"].current, by_id["de"].fixed) == (
        "dach",
        "general",
        True,
    )
    assert (by_id["#3"].proposed, by_id["#3"].current, by_id["#3"].broken) == (
        "dach",
        "general",
        True,
    )
    assert by_id["#3"].matches_expected is False
    assert by_id["#3"].changed_vs_current is True
    assert by_id["#4"].changed_vs_current is False
    assert by_id["#4"].matches_expected is True


def test_simulate_text_lists_mismatches_and_changes():
    lines = rules.simulate(PROPOSED, CORPUS, CURRENT).text().splitlines()
    assert lines[0] == "Routing simulation: FAILED"
    assert lines[1] == "Lint: OK (2 rules, no problems)"
    assert lines[2] == (
        "Corpus: 4 cases, 1 mismatch against expected; against current: 2 changed (1 fixed, 1 broken)"
    )
    assert lines[3] == (
        "  CHANGED de: expected 'dach', proposed 'dach', current 'general' (fixed);"
        ' input {"intent": "other", "language": "de"}'
    )
    assert lines[4].startswith(
        "  MISMATCH #3: expected 'general', proposed 'dach', current 'general' (broken)"
    )
    assert lines[5] == "  2 other cases route as expected and as before."


def test_simulate_without_current_and_all_matching_is_ok():
    corpus = {"cases": CORPUS["cases"][:2]}
    report = rules.simulate(PROPOSED, corpus)
    assert report.ok is True
    assert report.summary == {
        "cases": 2,
        "mismatches": 0,
        "changed_vs_current": 0,
        "fixed": 0,
        "broken": 0,
    }
    assert [c.current for c in report.cases] == [None, None]
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is True
    assert data["against_current"] is False
    assert data["cases"][1] == {
        "id": "de",
        "input": {"intent": "other", "language": "de"},
        "expected": "dach",
        "proposed": "dach",
        "current": None,
        "matches_expected": True,
        "changed_vs_current": False,
        "fixed": False,
        "broken": False,
    }
    assert report.text().splitlines()[-1] == "  Every case routes as expected."


def test_simulate_fails_when_the_proposed_ruleset_does_not_lint_even_if_routes_match():
    proposed = {
        **PROPOSED,
        "rules": [*PROPOSED["rules"], {"when": {"intent": "billing"}, "route": "x"}],
    }
    report = rules.simulate(proposed, {"cases": CORPUS["cases"][:2]})
    assert report.summary["mismatches"] == 0
    assert report.ok is False
    assert report.lint.codes() == ["conflicting_rule"]


def test_expected_null_means_no_route():
    report = rules.simulate({"rules": []}, {"cases": [{"input": {}, "expected": None}]})
    assert report.ok
    assert report.cases[0].proposed is None
    assert "(no route)" not in report.text()  # nothing to list when all cases match


@pytest.mark.parametrize(
    ("corpus", "fragment"),
    [
        (None, 'must be an object with a "cases" list'),
        ([{"input": {}}], 'must be an object with a "cases" list'),
        ({"cases": {}}, 'must be an object with a "cases" list'),
        ({"cases": []}, "no cases"),
        ({"cases": ["x"]}, "Case #1 is not an object"),
        ({"cases": [{"expected": "a"}]}, 'Case #1 needs an "input" object'),
        ({"cases": [{"id": "k", "input": {}}]}, 'Case k needs "expected"'),
        ({"cases": [{"input": {}, "expected": 3}]}, 'Case #1 needs "expected"'),
    ],
)
def test_bad_corpus_gives_a_failed_report_with_a_clear_message(corpus, fragment):
    report = rules.simulate(PROPOSED, corpus)
    assert report.ok is False
    assert any(fragment in p for p in report.corpus_problems), report.corpus_problems
    assert fragment in report.text()
    json.dumps(report.to_dict())


def test_good_cases_still_run_beside_bad_ones_and_repeated_ids_are_reported():
    corpus = {
        "cases": [
            {"id": "a", "input": {"intent": "billing"}, "expected": "billing"},
            {"id": "a", "input": {"intent": "sales"}, "expected": "general"},
            "junk",
        ]
    }
    report = rules.simulate(PROPOSED, corpus)
    assert report.summary["cases"] == 2
    assert report.summary["mismatches"] == 0
    assert report.corpus_problems == [
        "Case id 'a' is used more than once.",
        'Case #3 is not an object: "junk".',
    ]
    assert report.ok is False


def test_a_broken_current_ruleset_is_noted_but_does_not_fail_the_simulation():
    corpus = {"cases": CORPUS["cases"][:2]}
    report = rules.simulate(PROPOSED, corpus, {"rules": "nope"})
    assert report.ok is True
    assert report.current_lint is not None
    assert report.current_lint.codes() == ["schema"]
    assert report.summary["changed_vs_current"] == 2  # the broken current routes nowhere
    assert "the current ruleset has 1 lint problem" in report.text()
