"""``governance.kernel.commands.ActionCommand``: one exit-code convention for every command."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError, CommandParser

from governance.kernel.commands import EXIT_PROBLEM, EXIT_REFUSED, ActionCommand
from governance.kernel.errors import Conflict, Forbidden


class Demo(ActionCommand):
    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        for action in ("done", "refuse", "forbid", "bad-input", "check", "check-reported"):
            sub.add_parser(action)

    def do_done(self, options: dict[str, Any]) -> None:
        self.stdout.write("OK")

    def do_refuse(self, options: dict[str, Any]) -> None:
        raise Conflict("Already there.", field="slug")

    def do_forbid(self, options: dict[str, Any]) -> None:
        raise Forbidden("Only an administrator can.")

    def do_bad_input(self, options: dict[str, Any]) -> None:
        raise CommandError("from: must be 1 or more")

    def do_check(self, options: dict[str, Any]) -> None:
        self.problem("FAILED: seq 3: hash mismatch")

    def do_check_reported(self, options: dict[str, Any]) -> None:
        self.stdout.write("1 problem found")
        self.problem()


def run(action: str) -> tuple[int | str | None, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    try:
        call_command(Demo(), action, stdout=out, stderr=err)
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def test_done_is_exit_0():
    assert run("done") == (0, "OK\n", "")


@pytest.mark.parametrize(
    ("action", "line"),
    [
        ("refuse", "error: slug: Already there.\n"),
        ("forbid", "error: Only an administrator can.\n"),
        ("bad-input", "error: from: must be 1 or more\n"),
    ],
)
def test_a_refusal_is_one_error_line_and_exit_2(action: str, line: str):
    assert run(action) == (EXIT_REFUSED, "", line)
    assert EXIT_REFUSED == 2


def test_a_forbidden_cli_call_is_logged(caplog: pytest.LogCaptureFixture):
    with caplog.at_level("WARNING", logger="governance.kernel.security"):
        run("forbid")
    assert "refused cli forbid: Only an administrator can." in caplog.text


def test_a_check_that_found_a_problem_is_exit_1():
    assert run("check") == (EXIT_PROBLEM, "", "FAILED: seq 3: hash mismatch\n")
    assert EXIT_PROBLEM == 1


def test_a_problem_already_reported_exits_1_without_another_line():
    assert run("check-reported") == (EXIT_PROBLEM, "1 problem found\n", "")
