"""The one base of every ``manage.py <noun> <action>`` command, with one exit-code convention.

- 0: done.
- 1: a check ran and found a problem (``events verify``, ``registry verify``, ...).
- 2: refused: bad input or a broken rule (a DomainError), printed as one ``error: ...`` line
  on stderr; the same status as argparse's own usage errors, so a script sees every refusal
  the same way.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError
from typing_extensions import override

from governance.kernel.errors import DomainError, Forbidden
from governance.kernel.events.context import channel

logger = logging.getLogger("governance.kernel.security")

#: Exit status when a check ran and found a problem.
EXIT_PROBLEM = 1
#: Exit status when the command was refused (bad input, a broken rule).
EXIT_REFUSED = 2


class ActionCommand(BaseCommand):
    """Dispatches ``<action>`` to ``do_<action>(options)``, as the system via the CLI."""

    @override
    def handle(self, *args: Any, **options: Any) -> None:
        action = str(options["action"]).replace("-", "_")
        try:
            with channel("cli"):
                getattr(self, f"do_{action}")(options)
        except DomainError as exc:
            if isinstance(exc, Forbidden):
                logger.warning("refused cli %s: %s", action, exc.message)
            raise CommandError(str(exc)) from exc

    @override
    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute(*args, **options)
        except CommandError as exc:
            self.stderr.write(f"error: {exc}")
            sys.exit(EXIT_REFUSED)

    def problem(self, message: str | None = None) -> NoReturn:
        """A check found a problem: say so on stderr (unless the report is already out) and exit 1."""
        if message is not None:
            self.stderr.write(message)
        sys.exit(EXIT_PROBLEM)
