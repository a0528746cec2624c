"""Running a ``manage.py`` command in a test, the way a script sees it."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from governance.kernel.commands import EXIT_REFUSED


def refused(name: str, *args: str) -> str:
    """Run a command that must be refused: exit status 2, one ``error:`` line; returns the line."""
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command(name, *args, stdout=io.StringIO(), stderr=err)
    assert exit_.value.code == EXIT_REFUSED
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: "), lines
    return lines[0].removeprefix("error: ")
