"""The Active stage's lifecycle criteria that rollouts answers: monitoring and post-deploy
verification (issue 17; registered with ``reviews.lifecycle`` in ``RolloutsConfig.ready()``).

Each criterion is a pure judgement of plain facts (``monitoring_verdict``,
``post_deploy_verdict``: tested on their own) and a reader of those facts from the database
(``monitoring_facts``, ``post_deploy_facts``: a few queries for one version).

- ``monitoring``: telemetry arrived for the version in the last 24 hours (the count and the
  last time); missing says how to send it.
- ``post_deploy_verification``: the rollout that made the version the default succeeded with
  its phase manifest passing (the ``runtime-governance`` and ``rollback-proof`` phases are
  its post-deploy phases), or, for a default moved otherwise, its telemetry since it became
  active is within the watch's thresholds (``rollouts.watch``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Max, Sum
from django.utils import timezone

from registry.models import Artifact, Version
from rollouts.analysis import WatchVerdict
from rollouts.choices import RolloutState
from rollouts.models import ManifestVersion, RolloutTarget, TelemetryCounter

MONITORING_HOURS = 24
#: The manifest phases that say how the rollout went once it served (the seed's post-deploy).
POST_DEPLOY_PHASES = ("runtime-governance", "rollback-proof")

HOW_TO_MONITOR = (
    "send its telemetry: POST /api/v1/telemetry/ with a service token holding telemetry:write "
    "(the Python client does it with telemetry=True; docs/client.md), from every application "
    "whose slot serves it"
)


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def monitoring_verdict(
    *, path: str, requests: int, last_seen: datetime | None, hours: int = MONITORING_HOURS
) -> tuple[bool, str]:
    """(met, detail): telemetry arrived for the version in the last ``hours``."""
    if requests > 0 and last_seen is not None:
        return True, (
            f"{requests} requests reported in the last {hours} h, the last at {_when(last_seen)}"
        )
    return False, f"No telemetry for {path} in the last {hours} h: {HOW_TO_MONITOR}."


def monitoring_facts(
    version: Version, *, now: datetime | None = None
) -> tuple[int, datetime | None]:
    """Requests reported for ``version`` in the last 24 h and when the last arrived (one query)."""
    now = now or timezone.now()
    found = TelemetryCounter.objects.filter(
        version=version, bucket_start__gte=now - timedelta(hours=MONITORING_HOURS)
    ).aggregate(requests=Sum("requests"), last=Max("received_at"))
    return int(found["requests"] or 0), found["last"]


@dataclass(frozen=True)
class RolloutOutcome:
    """The succeeded rollout that made a version the default, and its newest manifest."""

    reference: str
    url: str
    manifest_number: int | None
    manifest_status: str | None
    failed_phases: tuple[str, ...]


def post_deploy_verdict(
    *, path: str, active: bool, rollout: RolloutOutcome | None, watch: WatchVerdict | None
) -> tuple[bool, str]:
    """(met, detail): the rollout's post-deploy phases passed, or the telemetry since the
    version became active is within thresholds."""
    if rollout is not None and rollout.manifest_status is not None:
        failing = [p for p in rollout.failed_phases if p in POST_DEPLOY_PHASES]
        if not failing and rollout.manifest_status == "pass":
            return True, (
                f"{rollout.reference} succeeded; its phase manifest v{rollout.manifest_number} "
                f"passes ({', '.join(POST_DEPLOY_PHASES)})"
            )
        what = ", ".join(failing or rollout.failed_phases) or "its status is fail"
        return False, (
            f"{rollout.reference}'s phase manifest v{rollout.manifest_number} does not pass: {what}"
        )
    if not active:
        return False, (
            f"{path} is not serving as a default: verification comes once a rollout makes it "
            "the default (its manifest's post-deploy phases) or its telemetry is judged"
        )
    if watch is None or watch.breached is None:
        why = watch.reason if watch is not None else "no telemetry"
        return False, (
            f"Post-deploy telemetry not judged yet ({why}); the watch needs its minimum "
            f"requests in the window: {HOW_TO_MONITOR}"
        )
    if watch.breached:
        return False, f"Telemetry breaks its thresholds: {watch.reason}"
    return True, f"Telemetry since it became active is {watch.reason}"


def post_deploy_facts(version: Version) -> tuple[bool, RolloutOutcome | None, WatchVerdict | None]:
    """(active, the succeeded rollout that made it the default, the watch's verdict)."""
    from rollouts.watch import watch_verdict

    # Read again: the version's cached artifact may predate its activation.
    artifact = Artifact.objects.select_related("tenant", "artifact_class").get(
        pk=version.artifact_id
    )
    active = artifact.active_version_id == version.pk
    target = (
        RolloutTarget.objects.filter(
            candidate=version, rollout__state=RolloutState.SUCCEEDED, slot__artifact=artifact
        )
        .select_related("rollout")
        .order_by("-rollout__number")
        .first()
    )
    outcome = None
    if target is not None:
        rollout = target.rollout
        manifest = (
            ManifestVersion.objects.filter(rollout=rollout)
            .order_by("-number")
            .only("number", "status", "body")
            .first()
        )
        failed: tuple[str, ...] = ()
        if manifest is not None:
            summary: Any = (manifest.body or {}).get("observation_summary") or {}
            failed = tuple(summary.get("phases_failed") or ())
        outcome = RolloutOutcome(
            reference=rollout.reference,
            url=rollout.get_absolute_url(),
            manifest_number=manifest.number if manifest is not None else None,
            manifest_status=manifest.status if manifest is not None else None,
            failed_phases=failed,
        )
    judged = outcome is None or outcome.manifest_status is None
    watch = watch_verdict(artifact) if active and judged else None
    return active, outcome, watch


# --- the criteria, as reviews.lifecycle registers them (RolloutsConfig.ready) ----------------


def _usage_url(version: Version) -> str:
    from rollouts.selectors import usage_url

    try:
        return usage_url(version.artifact)
    except Exception:  # noqa: BLE001 - a link is a convenience; the verdict stands without it
        return ""


def _api_docs_url() -> str:
    """Where the telemetry API is documented (its operation in the API docs)."""
    from django.urls import NoReverseMatch, reverse

    try:
        return reverse("api-docs") + "#/telemetry/telemetry_ingest"
    except NoReverseMatch:
        return ""


def monitoring_check(subject: Any) -> Any:
    """``monitoring``: telemetry arrived for the version in the last 24 h."""
    from reviews.lifecycle import Verdict

    version = subject.version
    requests, last = monitoring_facts(version)
    met, detail = monitoring_verdict(path=version.path, requests=requests, last_seen=last)
    return Verdict(met, detail, _usage_url(version) if met else _api_docs_url())


def post_deploy_check(subject: Any) -> Any:
    """``post_deploy_verification``: the rollout's post-deploy phases passed, or the telemetry
    since it became active is within the watch's thresholds."""
    from reviews.lifecycle import Verdict

    version = subject.version
    active, rollout, watch = post_deploy_facts(version)
    met, detail = post_deploy_verdict(path=version.path, active=active, rollout=rollout,
                                      watch=watch)  # fmt: skip
    url = rollout.url if rollout is not None else _usage_url(version)
    return Verdict(met, detail, url)


def criteria_register() -> None:
    """Replace reviews' placeholders of the Active stage's rollouts criteria (idempotent)."""
    from registry.choices import Stage
    from reviews.lifecycle import Criterion, register

    register(
        Criterion(
            "monitoring",
            Stage.ACTIVE,
            "Monitoring and drift hooks",
            "Telemetry arrived for the version in the last 24 hours (with the manifest hash it "
            "ran, which the drift check compares).",
            monitoring_check,
        )
    )
    register(
        Criterion(
            "post_deploy_verification",
            Stage.ACTIVE,
            "Post-deploy verification",
            "The rollout that made it the default passed its post-deploy phases, or its "
            "telemetry since it became active is within thresholds.",
            post_deploy_check,
        )
    )


def require_approved(change: Any, versions: Any) -> None:
    """Refuse (Conflict) a rollout of ``change`` when its lifecycle policy is enforced and a
    version it would serve misses a criterion of Approved, naming each one."""
    from governance.kernel.errors import Conflict
    from registry.choices import Stage
    from reviews.lifecycle import CRITERIA_UNMET, blocking, describe

    problems = []
    for version in sorted(versions, key=lambda v: v.path):
        missing = blocking(version, Stage.APPROVED, change)
        if missing:
            problems.append(describe(version, missing))
    if problems:
        raise Conflict(
            f"{change.reference} cannot be rolled out: the Approved stage criteria are not met: "
            + " | ".join(problems),
            field="change",
            code=CRITERIA_UNMET,
        )
