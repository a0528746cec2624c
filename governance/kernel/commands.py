"""The shape every ``manage.py <noun> <action>`` command shares."""

from __future__ import annotations

import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from governance.kernel.errors import DomainError, Forbidden
from governance.kernel.events.context import channel

logger = logging.getLogger("governance.kernel.security")


class ActionCommand(BaseCommand):
    """Dispatches ``<action>`` to ``do_<action>(options)``, as the system via the CLI.

    A broken rule (DomainError) becomes one line on stderr and exit status 1.
    """

    def handle(self, *args: Any, **options: Any) -> None:
        action = str(options["action"]).replace("-", "_")
        try:
            with channel("cli"):
                getattr(self, f"do_{action}")(options)
        except DomainError as exc:
            if isinstance(exc, Forbidden):
                logger.warning("refused cli %s: %s", action, exc.message)
            raise CommandError(str(exc)) from exc


class StrictActionCommand(ActionCommand):
    """An ActionCommand for bad input too: one ``error: field: reason`` line and exit status 2.

    The same as argparse's own usage errors, so a script sees every refusal the same way.
    """

    def execute(self, *args: Any, **options: Any) -> Any:
        import sys

        try:
            return super().execute(*args, **options)
        except CommandError as exc:
            self.stderr.write(f"error: {exc}")
            sys.exit(2)
