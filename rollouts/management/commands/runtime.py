"""``manage.py runtime show|resolve|apps|slots|history|app-create|slot-create|override-set|override-clear``.

What a tenant's application serves, answered by the same code as ``GET /api/v1/runtime/...``
and ``POST /api/v1/resolve/`` (``rollouts.runtime``), and the declarations behind it, written
through ``rollouts.services``. Acting as a person takes ``--as USERNAME`` (default: the system).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser

from accounts.selectors import tenant_by_slug, user_by_username
from governance.kernel.commands import ActionCommand
from governance.kernel.errors import DomainError, NotFound
from registry import selectors as registry_selectors
from registry.models import Artifact, Version
from rollouts import runtime, selectors, services
from rollouts.choices import BUCKETS
from rollouts.models import Application, Slot


def percent(weight: int) -> str:
    """A weight in buckets as people read it: ``25%``, ``0.5%``."""
    return f"{weight * 100 / BUCKETS:g}%"


def application_unscoped(slug: str) -> Application:
    found = Application.objects.select_related("tenant").filter(slug=slug).first()
    if found is None:
        raise NotFound(f"No application '{slug}'.", field="application")
    return found


def slot_unscoped(application: str, name: str) -> Slot:
    app = application_unscoped(application)
    found = (
        Slot.objects.select_related(
            "application__tenant", "artifact__artifact_class", "artifact__tenant"
        )
        .filter(application=app, name=name)
        .first()
    )
    if found is None:
        raise NotFound(f"No slot '{name}' in {app.slug}.", field="slot")
    return found


def _artifact(path: str) -> Artifact:
    parts = path.strip("/").split("/")
    if len(parts) != 3:
        raise DomainError(f"'{path}' is not CLASS/TENANT/SLUG.", field="artifact")
    return registry_selectors.artifact_by_path_unscoped(*parts)


def _version_of(slot: Slot, text: str) -> Version:
    ref = text if "/" in text else f"{slot.artifact.path}/{text}"
    try:
        return registry_selectors.version_by_reference_unscoped(ref)
    except DomainError as exc:
        raise type(exc)(exc.message, field="version", code=exc.code) from exc


def _rule_text(rule: dict[str, Any], versions: dict[str, Any]) -> str:
    candidate = versions.get(rule["candidate"], {}).get("version", "?")
    if rule["strategy"] == "flag":
        flag = rule.get("flag") or {}
        state = "on" if flag.get("on") else "off"
        return f"{rule['rollout']} flag {flag.get('key', '')} {state} -> {candidate}"
    if rule["target"] == "paper":
        return f"{rule['rollout']} cohort of {len(rule['cohort'])} -> {candidate}"
    return f"{rule['rollout']} {rule['strategy']} {percent(rule['weight'])} -> {candidate}"


def table(rows: list[list[str]]) -> list[str]:
    """Columns padded to their widest cell; the last column is not padded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join(
            [*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]
        ).rstrip()
        for row in rows
    ]


class Command(ActionCommand):
    help = "Show and resolve a tenant's runtime configuration; declare applications, slots and overrides."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        p = sub.add_parser(
            "show", help="Every slot of the application for the tenant: version, reason, rollouts."
        )
        p.add_argument("tenant", metavar="TENANT")
        p.add_argument("application", metavar="APPLICATION")
        p.add_argument("--subject", default=None, help="answer for this subject (canary splits)")
        p.add_argument("--json", action="store_true", help="print the signed snapshot instead")
        p = sub.add_parser("resolve", help="What one slot serves for a subject (or a pin).")
        p.add_argument("tenant", metavar="TENANT")
        p.add_argument("application", metavar="APPLICATION")
        p.add_argument("slot", metavar="SLOT")
        p.add_argument("--subject", default=None)
        p.add_argument("--pin", default=None, metavar="VERSION", help="a version or a reference")
        p.add_argument("--json", action="store_true", help="print the answer as the API does")
        p = sub.add_parser("apps", help="Applications (optionally of one tenant).")
        p.add_argument("--tenant", default=None)
        p = sub.add_parser("slots", help="The slots of an application with their defaults.")
        p.add_argument("application", metavar="APPLICATION")
        p = sub.add_parser("history", help="A slot's pointer moves, newest first.")
        p.add_argument("application", metavar="APPLICATION")
        p.add_argument("slot", metavar="SLOT")
        p = sub.add_parser("app-create", help="Declare an application of a tenant.")
        p.add_argument("tenant", metavar="TENANT")
        p.add_argument("slug", metavar="SLUG")
        p.add_argument("--name", required=True)
        p.add_argument("--description", default="")
        self._as(p)
        p = sub.add_parser("slot-create", help="Declare a slot bound to an artifact.")
        p.add_argument("application", metavar="APPLICATION")
        p.add_argument("name", metavar="NAME")
        p.add_argument("--artifact", required=True, metavar="CLASS/TENANT/SLUG")
        p.add_argument("--description", default="")
        self._as(p)
        p = sub.add_parser(
            "override-set", help="Point a tenant's slot at a version of its artifact."
        )
        p.add_argument("application", metavar="APPLICATION")
        p.add_argument("slot", metavar="SLOT")
        p.add_argument("tenant", metavar="TENANT")
        p.add_argument("version", metavar="VERSION")
        p.add_argument("--reason", required=True)
        self._as(p)
        p = sub.add_parser("override-clear", help="Give a tenant's slot back its default.")
        p.add_argument("application", metavar="APPLICATION")
        p.add_argument("slot", metavar="SLOT")
        p.add_argument("tenant", metavar="TENANT")
        p.add_argument("--reason", required=True)
        self._as(p)

    @staticmethod
    def _as(p: Any) -> None:
        p.add_argument(
            "--as",
            dest="as_user",
            default=None,
            metavar="USERNAME",
            help="act as this person (default: the system)",
        )

    def _actor(self, o: dict[str, Any]) -> Any:
        return user_by_username(o["as_user"]) if o.get("as_user") else None

    def do_show(self, o: dict[str, Any]) -> None:
        snap = runtime.snapshot(o["tenant"], o["application"])
        if o["json"]:
            self.stdout.write(snap.document().decode())
            return
        body = snap.body
        self.stdout.write(
            f"{body['application']} for {body['tenant']} (sequence {body['sequence']}, "
            f"etag {snap.etag})"
        )
        rows = [["SLOT", "VERSION", "REASON", "ROLLOUTS"]]
        warnings: list[str] = []
        for name in sorted(body["slots"]):
            answer = runtime.resolve(snap, name, o["subject"])
            version = (
                f"{answer.ref.split('#')[0]}#{answer.sha256[:12]}"
                if answer.ref and answer.sha256
                else "-"
            )
            rules = [_rule_text(r, body["versions"]) for r in body["slots"][name]["rules"]]
            rows.append([name, version, answer.reason, ", ".join(rules) or "-"])
            warnings += [f"{name}: {w}" for w in answer.warnings]
        if len(rows) == 1:
            self.stdout.write("(no slots this tenant may read)")
            return
        for line in table(rows):
            self.stdout.write(line)
        for warning in warnings:
            self.stdout.write(f"warning: {warning}")

    def do_resolve(self, o: dict[str, Any]) -> None:
        answer = runtime.answer(o["tenant"], o["application"], o["slot"], o["subject"], o["pin"])
        if o["json"]:
            self.stdout.write(json.dumps(answer.as_json(), indent=2, sort_keys=True))
            return
        if answer.ref is None:
            self.stdout.write(f"{answer.slot}: nothing serves ({answer.reason})")
        else:
            self.stdout.write(f"{answer.slot}: {answer.ref} ({answer.reason})")
        details = [
            f"{label} {value}"
            for label, value in (
                ("rollout", answer.rollout),
                ("step", answer.step),
                ("arm", answer.arm),
                ("bucket", answer.bucket),
            )
            if value is not None
        ]
        self.stdout.write(f"  {', '.join([*details, f'sequence {answer.sequence}'])}")
        for warning in answer.warnings:
            self.stdout.write(f"warning: {warning}")

    def do_apps(self, o: dict[str, Any]) -> None:
        apps = Application.objects.select_related("tenant").order_by("slug")
        if o["tenant"]:
            apps = apps.filter(tenant=tenant_by_slug(o["tenant"]))
        for app in apps:
            self.stdout.write(f"{app.slug}\t{app.tenant.slug}\t{app.name}")

    def do_slots(self, o: dict[str, Any]) -> None:
        app = application_unscoped(o["application"])
        for slot in selectors.slots_of(app).order_by("name"):
            active = slot.artifact.active_version
            default = active.version if active else "(switched off)"
            self.stdout.write(f"{slot.name}\t{slot.artifact.path}\t{default}")

    def do_history(self, o: dict[str, Any]) -> None:
        slot = slot_unscoped(o["application"], o["slot"])
        for move in selectors.slot_history(slot):
            old = move.from_version.version if move.from_version else "-"
            new = move.to_version.version if move.to_version else "-"
            where = move.tenant.slug if move.tenant else "all tenants"
            who = move.actor.username if move.actor else "system"
            via = f" {move.rollout.reference}" if move.rollout else ""
            weight = f" {percent(move.weight)}" if move.weight is not None else ""
            self.stdout.write(
                f"{move.created_at:%Y-%m-%d %H:%M}\t{move.kind}{weight}\t{where}\t{old} -> {new}"
                f"\t{who}{via}\t{move.reason}"
            )

    def do_app_create(self, o: dict[str, Any]) -> None:
        app = services.application_create(
            tenant=tenant_by_slug(o["tenant"]),
            slug=o["slug"],
            name=o["name"],
            description=o["description"],
            actor=self._actor(o),
        )
        self.stdout.write(f"{app.slug} created ({app.tenant.slug})")

    def do_slot_create(self, o: dict[str, Any]) -> None:
        slot = services.slot_create(
            application=application_unscoped(o["application"]),
            name=o["name"],
            artifact=_artifact(o["artifact"]),
            description=o["description"],
            actor=self._actor(o),
        )
        active = slot.artifact.active_version
        self.stdout.write(
            f"{slot} created: {slot.artifact.path}, default {active.version if active else '-'}"
        )

    def do_override_set(self, o: dict[str, Any]) -> None:
        slot = slot_unscoped(o["application"], o["slot"])
        override = services.override_set(
            slot=slot,
            tenant=tenant_by_slug(o["tenant"]),
            version=_version_of(slot, o["version"]),
            reason=o["reason"],
            actor=self._actor(o),
        )
        self.stdout.write(f"{slot} for {override.tenant.slug}: {override.version.version}")

    def do_override_clear(self, o: dict[str, Any]) -> None:
        slot = slot_unscoped(o["application"], o["slot"])
        tenant = tenant_by_slug(o["tenant"])
        services.override_clear(slot=slot, tenant=tenant, reason=o["reason"], actor=self._actor(o))
        self.stdout.write(f"{slot} for {tenant.slug}: back to the default")
