"""``manage.py registry create|publish|bump-version|show|history|verify|import|export|export-status|rollback|deactivate|safety-switch|action-eligible|deputy``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import CommandParser
from django.db import transaction

from accounts.selectors import tenant_by_slug, user_by_username
from governance.kernel.commands import ActionCommand
from governance.kernel.errors import DomainError, NotFound
from registry import hooks, selectors, services
from registry.choices import ContentKind, Determinism
from registry.gitsync import CLASS, export_prompts, import_prompts, tag_releases
from registry.models import Artifact, Version
from registry.status_export import ROOT, export_status, release_tag
from registry.verification import log_problem, verify_versions


def _parts(path: str) -> list[str]:
    parts = path.strip("/").split("/")
    if len(parts) != 3:
        raise DomainError(f"'{path}' is not CLASS/TENANT/SLUG.", field="artifact")
    return parts


def _artifact(path: str) -> Artifact:
    return selectors.artifact_by_path_unscoped(*_parts(path))


def _artifact_create(path: str, o: dict[str, Any]) -> Artifact:
    """Start an artifact from the command line (the system is the actor; the owner is named)."""
    cls, tenant, slug = _parts(path)
    if not o["owner"]:
        raise DomainError("Name the artifact's owner with --owner USERNAME.", field="owner")
    return services.artifact_create(
        artifact_class=selectors.artifact_class_by_slug(cls),
        tenant=tenant_by_slug(tenant),
        slug=slug,
        title=o["title"] or "",
        summary=o.get("summary") or "",
        license_id=o.get("license") or "proprietary",
        owner=user_by_username(o["owner"]),
        actor=None,
    )


def _evidence(o: dict[str, Any]) -> dict[str, Any]:
    """The lifecycle metadata given as flags (the service checks it)."""
    meta = {
        key: o[key]
        for key in ("determinism", "evaluation_plan", "risk_note", "no_datasets", "pr_url")
        if o.get(key) is not None
    }
    if o.get("io_schema") is not None:
        path = Path(o["io_schema"])
        if not path.is_file():
            raise DomainError(f"No file {path}.", field="io_schema")
        try:
            meta["io_schema"] = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise DomainError(f"{path} is not JSON: {exc}", field="io_schema") from exc
    return meta


def _content(artifact: Artifact, file: str) -> services.Content:
    path = Path(file)
    if not path.is_file():
        raise DomainError(f"No file {file}.", field="file")
    data = path.read_bytes()
    kind = artifact.artifact_class.content_kind
    if kind == ContentKind.FILE:
        return services.Content(file_bytes=data, file_name=path.name)
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise DomainError(f"{file} is not UTF-8 text.", field="file") from exc
    return services.Content(text=text)


TAG_HELP = (
    "DIR is a git work tree: commit what was written, then tag each approved or active version "
    "learning/<class>/<tenant>/<slug>@<version> (existing tags are left as they are)"
)


def _add_evidence_flags(p: CommandParser) -> None:
    """``registry publish``'s lifecycle evidence flags (the version's signed metadata)."""
    evidence = p.add_argument_group(
        "lifecycle evidence and provenance (signed metadata; docs/registry.md)"
    )
    evidence.add_argument(
        "--determinism",
        default=None,
        metavar="|".join(Determinism.values),
        help="the version's classification",
    )
    evidence.add_argument("--evaluation-plan", default=None, metavar="TEXT")
    evidence.add_argument("--risk-note", default=None, metavar="TEXT")
    evidence.add_argument(
        "--no-datasets",
        default=None,
        metavar="REASON",
        help="this version uses no dataset, because REASON",
    )
    evidence.add_argument("--pr-url", default=None, metavar="URL")
    evidence.add_argument(
        "--io-schema",
        default=None,
        metavar="FILE",
        help='a JSON file: {"input": {JSON Schema}, "output": {JSON Schema}}',
    )


def _add_action_eligible_parsers(sub: Any) -> None:
    """``safety-switch engage|release``, ``action-eligible on|off``, ``deputy``."""
    p = sub.add_parser(
        "safety-switch",
        help="Halt (engage) or release an action-eligible artifact: while engaged, no "
        "resolution names its versions and the active version is kept; logged.",
    )
    p.add_argument("switch", choices=["engage", "release"])
    p.add_argument("artifact", metavar="CLASS/TENANT/SLUG")
    p.add_argument("--reason", required=True)
    _add_as(p)
    p = sub.add_parser(
        "action-eligible",
        help="Mark an artifact action-eligible (on) or not (off); logged.",
    )
    p.add_argument("artifact", metavar="CLASS/TENANT/SLUG")
    p.add_argument("value", choices=["on", "off"])
    p.add_argument("--reason", required=True)
    _add_as(p)
    p = sub.add_parser(
        "deputy",
        help="Name the owner's deputy (an active member other than the owner; '-' for "
        "nobody); logged.",
    )
    p.add_argument("artifact", metavar="CLASS/TENANT/SLUG")
    p.add_argument("deputy", metavar="USERNAME")
    _add_as(p)


def _add_describe_parser(sub: Any) -> None:
    p = sub.add_parser(
        "describe",
        help="Change an artifact's title and summary (what it is for); an option left out "
        "is kept; logged.",
    )
    p.add_argument("artifact", metavar="CLASS/TENANT/SLUG")
    p.add_argument("--title", default=None)
    p.add_argument("--summary", default=None, help="what it is for ('' for none)")
    _add_as(p)


def _add_as(p: CommandParser) -> None:
    p.add_argument(
        "--as",
        dest="as_user",
        default=None,
        metavar="USERNAME",
        help="record it as this administrator (default: the system)",
    )


class Command(ActionCommand):
    help = "Publish, inspect and verify registry versions."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        p = sub.add_parser("create", help="Start an artifact: its title, owner and purpose.")
        p.add_argument("artifact", metavar="CLASS/TENANT/SLUG")
        p.add_argument("--title", required=True)
        p.add_argument("--owner", required=True, metavar="USERNAME", help="a member of the tenant")
        p.add_argument("--summary", default="", help="what it is for")
        p.add_argument("--license", default="proprietary")
        for name in ("publish", "bump-version"):
            p = sub.add_parser(
                name,
                help="Publish a version."
                if name == "publish"
                else "Dry run: print the version a publish would get.",
            )
            p.add_argument("artifact", metavar="CLASS/TENANT/SLUG")
            p.add_argument("--file", required=True)
            p.add_argument("--impact", required=True, choices=["major", "minor", "patch"])
            p.add_argument("--version", default=None)
            if name == "publish":
                p.add_argument("--reason", required=True)
                p.add_argument("--depends", nargs="*", default=[], metavar="REF")
                p.add_argument(
                    "--title",
                    default=None,
                    help="create the artifact first if it does not exist (with --owner)",
                )
                p.add_argument("--owner", default=None, metavar="USERNAME")
                _add_evidence_flags(p)
        p = sub.add_parser(
            "show",
            help="Print a version's canonical manifest (stdout) and its SHA-256, stage and "
            "whether it is active (stderr). Without a version: the active version.",
        )
        p.add_argument("ref")
        p.add_argument("--tenant", default=None, help="context for slug@version forms")
        p = sub.add_parser(
            "history", help="List an artifact's versions, newest first; the active one is marked."
        )
        p.add_argument("artifact", metavar="CLASS/TENANT/SLUG")
        p = sub.add_parser(
            "verify",
            help="Re-hash and check the signature of every version (or those named) and their dependencies.",
        )
        p.add_argument("refs", nargs="*", metavar="REF")
        p.add_argument("--tenant", default=None)
        p = sub.add_parser(
            "import",
            help="Publish prompt files from a git checkout (prompt-templates/<group>/<slug>/<version>.md).",
        )
        p.add_argument("dir")
        p.add_argument("--tenant", required=True)
        p = sub.add_parser("export", help="Write a tenant's prompts back in the same layout.")
        p.add_argument("dir")
        p.add_argument("--tenant", required=True)
        p.add_argument("--tag", action="store_true", help=TAG_HELP)
        p = sub.add_parser(
            "export-status",
            help="Write artifacts/learning/status/<class>/<tenant>/<slug>.json and "
            "history/<...>.jsonl for every artifact (read-only; a re-export is byte-identical).",
        )
        p.add_argument("dir")
        p.add_argument("--tenant", default=None, help="only this tenant's artifacts")
        p.add_argument("--tag", action="store_true", help=TAG_HELP)
        p = sub.add_parser(
            "rollback",
            help="Restore the last promoted version (or TARGET_VERSION): no approvals needed, "
            "pack verification re-runs, an event names the change rolled back.",
        )
        p.add_argument("artifact", metavar="CLASS/TENANT/SLUG")
        p.add_argument("target", nargs="?", default=None, metavar="TARGET_VERSION")
        p.add_argument("--reason", required=True)
        p.add_argument(
            "--override-reason",
            default="",
            help="needed to restore a deprecated version (recorded in the event)",
        )
        p.add_argument(
            "--as",
            dest="as_user",
            default=None,
            metavar="USERNAME",
            help="record the rollback as this administrator (default: the system)",
        )
        p = sub.add_parser(
            "deactivate",
            help="Switch it off: leave the artifact with no active version "
            "(resolution answers 404); logged.",
        )
        p.add_argument("artifact", metavar="CLASS/TENANT/SLUG")
        p.add_argument("--reason", required=True)
        _add_as(p)
        _add_action_eligible_parsers(sub)
        _add_describe_parser(sub)

    def do_create(self, o: dict[str, Any]) -> None:
        artifact = _artifact_create(o["artifact"], o)
        owner = artifact.owner.username if artifact.owner else "-"
        self.stdout.write(f"{artifact.path} created (owner {owner})")

    @transaction.atomic  # an artifact created for a publish that fails is not left behind
    def do_publish(self, o: dict[str, Any]) -> None:
        try:
            artifact = _artifact(o["artifact"])
        except NotFound as exc:
            if o["title"] is None:
                raise NotFound(
                    f"{exc.message} Create it with `registry create` or give --title and --owner.",
                    field=exc.field,
                ) from exc
            artifact = _artifact_create(o["artifact"], o)
        version, created = services.version_publish(
            artifact=artifact,
            content=_content(artifact, o["file"]),
            impact=o["impact"],
            reason=o["reason"],
            version=o["version"],
            dependencies=o["depends"],
            metadata=_evidence(o),
            actor=None,
        )
        self.stdout.write(
            f"{version.path} {version.manifest_sha256}{'' if created else ' (already published)'}"
        )

    def do_bump_version(self, o: dict[str, Any]) -> None:
        artifact = _artifact(o["artifact"])
        plan = services.version_plan(
            artifact=artifact,
            content=_content(artifact, o["file"]),
            impact=o["impact"],
            version=o["version"],
        )
        detected = plan.detected.label if plan.detected else "none"
        self.stdout.write(f"{artifact.path}/{plan.version} (detected impact: {detected})")
        for change in plan.changes:
            self.stdout.write(f"  {change.impact.label}: {change.description}")

    def do_show(self, o: dict[str, Any]) -> None:
        version = selectors.version_by_reference_unscoped(o["ref"], tenant=o["tenant"])
        self.stdout.write(json.dumps(json.loads(bytes(version.manifest)), indent=2, sort_keys=True))
        # stdout stays the manifest (JSON a script can read); what it is goes to stderr
        active = "active" if selectors.is_active(version) else "not active"
        self.stderr.write(f"{version.path} sha256 {version.manifest_sha256}")
        self.stderr.write(f"stage: {selectors.stage_of(version)} ({active})")
        note = selectors.lifecycle_note(version)
        if note:
            self.stderr.write(f"note: {note}")

    def do_history(self, o: dict[str, Any]) -> None:
        artifact = _artifact(o["artifact"])
        versions = list(selectors.versions_of(artifact))
        notes = selectors.lifecycle_notes(versions)
        for v in versions:
            who = v.created_by.username if v.created_by else "system"
            self.stdout.write(
                f"{v.version}\t{v.declared_impact}\t{v.created_at:%Y-%m-%d %H:%M}\t{who}\t{v.manifest_sha256[:16]}\t{v.change_reason}"
                + ("\t[active]" if v.pk == artifact.active_version_id else "")
                + (f"\t[{notes[v.pk]}]" if v.pk in notes else "")
            )
        if artifact.active_version_id is None:
            self.stdout.write(f"# {artifact.path} has no active version")

    def do_verify(self, o: dict[str, Any]) -> None:
        if o["refs"]:
            versions: Any = [
                selectors.version_by_reference_unscoped(r, tenant=o["tenant"]) for r in o["refs"]
            ]
        else:
            versions = Version.objects.select_related(
                "artifact__artifact_class", "artifact__tenant", "created_by"
            ).order_by("created_at")
        checked, failure = verify_versions(versions)
        if failure is not None:
            self.problem(f"FAILED: {failure.version.pinned}: {failure.reason}")
        if not o["refs"]:
            problem = log_problem()  # every published version still has its row
            if problem is not None:
                self.problem(f"FAILED: {problem}")
        self.stdout.write(f"OK: {checked} versions verified")

    def do_import(self, o: dict[str, Any]) -> None:
        report = import_prompts(Path(o["dir"]), tenant=tenant_by_slug(o["tenant"]))
        self.stdout.write(
            f"Imported {report.published} new versions, {report.unchanged} already published"
        )

    def do_export(self, o: dict[str, Any]) -> None:
        tenant = tenant_by_slug(o["tenant"])
        count = export_prompts(Path(o["dir"]), tenant=tenant)
        self.stdout.write(f"Wrote {count} files to {o['dir']}")
        if o["tag"]:
            releases = selectors.released_versions(tenant=tenant, class_slug=CLASS)
            self._tag(
                Path(o["dir"]), releases, "prompt-templates", f"registry export ({tenant.slug})"
            )

    def do_export_status(self, o: dict[str, Any]) -> None:
        tenant = tenant_by_slug(o["tenant"]) if o["tenant"] else None
        directory = Path(o["dir"])
        report = export_status(directory, tenant=tenant)
        self.stdout.write(
            f"Exported {report.artifacts} artifacts to {directory / ROOT}: "
            f"{report.written} files written, {report.unchanged} unchanged"
        )
        if o["tag"]:
            scope = tenant.slug if tenant else "all tenants"
            self._tag(directory, report.releases, str(ROOT), f"registry export-status ({scope})")

    def _tag(self, directory: Path, releases: list[Version], path: str, message: str) -> None:
        report = tag_releases(
            directory,
            [(release_tag(v), f"{v.path} manifest sha256 {v.manifest_sha256}") for v in releases],
            paths=[path],
            message=message,
        )
        committed = "committed the export, " if report.committed else ""
        self.stdout.write(
            f"{committed}{len(report.created)} tags created, {len(report.existing)} already there"
        )
        for tag in report.created:
            self.stdout.write(f"  {tag}")

    def do_rollback(self, o: dict[str, Any]) -> None:
        artifact = _artifact(o["artifact"])
        target = f"{artifact.path}/{o['target']}" if o["target"] else None
        actor = user_by_username(o["as_user"]) if o["as_user"] else None
        activation = hooks.rollback(
            artifact=artifact,
            actor=actor,
            reason=o["reason"],
            target=target,
            override_reason=o["override_reason"],
        )
        previous = activation.previous
        change = f" (rolled back {activation.change.reference})" if activation.change else ""
        restored = activation.version
        assert restored is not None  # a rollback always restores a version
        self.stdout.write(
            f"{artifact.path}: active {restored.version} "
            f"{restored.manifest_sha256}, was {previous.version if previous else '-'}{change}"
        )

    def do_safety_switch(self, o: dict[str, Any]) -> None:
        artifact = _artifact(o["artifact"])
        actor = user_by_username(o["as_user"]) if o["as_user"] else None
        if o["switch"] == "engage":
            services.safety_switch_engage(artifact=artifact, reason=o["reason"], actor=actor)
            self.stdout.write(selectors.halted_reason(_artifact(o["artifact"])) or "")
        else:
            services.safety_switch_release(artifact=artifact, reason=o["reason"], actor=actor)
            self.stdout.write(f"{artifact.path}: released; resolution names its versions again")

    def do_action_eligible(self, o: dict[str, Any]) -> None:
        artifact = _artifact(o["artifact"])
        actor = user_by_username(o["as_user"]) if o["as_user"] else None
        services.artifact_action_eligible_set(
            artifact=artifact, value=o["value"] == "on", reason=o["reason"], actor=actor
        )
        state = "action-eligible" if o["value"] == "on" else "not action-eligible"
        self.stdout.write(f"{artifact.path}: {state}")

    def do_deputy(self, o: dict[str, Any]) -> None:
        artifact = _artifact(o["artifact"])
        actor = user_by_username(o["as_user"]) if o["as_user"] else None
        deputy = None if o["deputy"] == "-" else user_by_username(o["deputy"])
        services.artifact_deputy_set(artifact=artifact, deputy=deputy, actor=actor)
        self.stdout.write(f"{artifact.path}: deputy {deputy.username if deputy else 'nobody'}")

    def do_describe(self, o: dict[str, Any]) -> None:
        artifact = _artifact(o["artifact"])
        actor = user_by_username(o["as_user"]) if o["as_user"] else None
        described = services.artifact_describe(
            artifact=artifact,
            title=artifact.title if o["title"] is None else o["title"],
            summary=artifact.summary if o["summary"] is None else o["summary"],
            actor=actor,
        )
        self.stdout.write(f"{described.path}: {described.title} - {described.summary or '-'}")

    def do_deactivate(self, o: dict[str, Any]) -> None:
        artifact = _artifact(o["artifact"])
        actor = user_by_username(o["as_user"]) if o["as_user"] else None
        activation = hooks.deactivate(artifact=artifact, actor=actor, reason=o["reason"])
        was = activation.previous.version if activation.previous else "-"
        change = f" (rolled back {activation.change.reference})" if activation.change else ""
        self.stdout.write(f"{artifact.path}: no active version, was {was}{change}")
