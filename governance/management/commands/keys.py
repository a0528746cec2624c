"""``manage.py keys generate|list|rotate|revoke``: the Ed25519 keys that sign the log."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from governance.kernel.commands import ActionCommand
from governance.kernel.events import keys as keystore
from governance.kernel.events.models import SigningKey
from governance.kernel.events.services import key_generate, key_revoke, key_rotate


class Command(ActionCommand):
    help = "Manage the Ed25519 keys that sign events and checkpoints."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        gen = sub.add_parser("generate", help="Create a key; it becomes active if none is.")
        gen.add_argument(
            "--if-missing", action="store_true", help="Do nothing when a key is already active."
        )
        sub.add_parser(
            "list",
            help="List keys with their status and whether this process holds the private key.",
        )
        sub.add_parser(
            "rotate", help="Activate a new key; the rotation event is signed by the old one."
        )
        revoke = sub.add_parser(
            "revoke",
            help="Revoke a compromised (not active: rotate first) key; "
            "what it signs from now on fails verification.",
        )
        revoke.add_argument("kid", metavar="KID")
        revoke.add_argument("--reason", required=True, help="why (recorded in the event)")

    def do_generate(self, options: dict[str, Any]) -> None:
        active = SigningKey.objects.filter(status=SigningKey.Status.ACTIVE).first()
        if active and options["if_missing"]:
            self.stdout.write(f"Active key {active.kid} already registered ({keystore.key_dir()})")
            return
        key = key_generate(actor=None)
        self.stdout.write(f"Generated key {key.kid} ({key.status}) in {keystore.key_dir()}")

    def do_list(self, _options: dict[str, Any]) -> None:
        held = keystore.load_private_keys()
        keys = list(SigningKey.objects.order_by("created_at"))
        if not keys:
            raise CommandError("signing_key: no keys registered; run `keys generate`")
        for key in keys:
            here = "private key here" if key.kid in held else "private key absent"
            retired = f" retired {key.retired_at:%Y-%m-%d %H:%M}" if key.retired_at else ""
            if key.revoked_at:
                retired += f" revoked {key.revoked_at:%Y-%m-%d %H:%M}"
            self.stdout.write(
                f"{key.kid}\t{key.status}\t{key.created_at:%Y-%m-%d %H:%M}{retired}\t{here}\t{key.public_key}"
            )

    def do_rotate(self, _options: dict[str, Any]) -> None:
        key = key_rotate(actor=None)
        self.stdout.write(f"Rotated: {key.kid} is now active")

    def do_revoke(self, options: dict[str, Any]) -> None:
        key = key_revoke(kid=options["kid"], reason=options["reason"], actor=None)
        self.stdout.write(
            f"Revoked: {key.kid} at {key.revoked_at:%Y-%m-%dT%H:%M:%SZ}; "
            "what it signs from now on fails verification"
        )
