"""The built-in criteria of the seed's table (all but Active's runtime ones, which rollouts
registers over the placeholders here). Each reads the evidence where it is kept and says
exactly what is missing and where to add it."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import quote

from django.urls import reverse

from registry.choices import ArtifactClass, Determinism, Stage
from registry.models import Version, VersionDependency
from reviews.choices import ChangeStatus, CheckKind, CheckStatus, Requirement, RolloutStrategy
from reviews.lifecycle.catalog import Criterion, Subject, Verdict, register

#: Metric names a complete evaluation report carries, as (what is asked, accepted words). A
#: metric counts when one of the words is a word of its name (``latency_p95_ms`` is latency).
REPORT_METRICS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("accuracy or utility", ("accuracy", "utility")),
    ("calibration", ("calibration",)),
    ("stability", ("stability",)),
    ("latency", ("latency",)),
    ("cost", ("cost",)),
    ("throughput", ("throughput",)),
)
#: What stands where monitoring is not installed (rollouts registers the real criteria).
NO_MONITORING = "no runtime monitoring reports for this version"


# --- where things are added ----------------------------------------------------------------


def _publish_url(version: Version) -> str:
    return reverse("registry:publish", kwargs=version.artifact.url_kwargs())


def _propose_url(version: Version) -> str:
    return f"{reverse('reviews:change-new')}?propose={quote(version.path, safe='')}"


def _change_url(subject: Subject, anchor: str) -> str:
    assert subject.change is not None
    return f"{subject.change.get_absolute_url()}#{anchor}"


def _no_change(subject: Subject) -> Verdict:
    return Verdict(
        False,
        f"no change request proposes {subject.version.version}: propose it for promotion, "
        "then add this there",
        _propose_url(subject.version),
    )


def _republish(what: str, key: str) -> str:
    """How metadata is added: versions never change, so a new version carries it."""
    flag = key.replace("_", "-")
    return (
        f"{what}: publish a new version with metadata {key} (the publish form's lifecycle "
        f"evidence, the API's metadata, or registry publish --{flag})"
    )


# --- Draft ---------------------------------------------------------------------------------


def _inventory(s: Subject) -> Verdict:
    artifact = s.version.artifact
    url = artifact.get_absolute_url()
    missing = []
    if artifact.owner_id is None:
        missing.append("no accountable owner: an administrator sets one on the artifact page")
    if not artifact.summary.strip():
        missing.append(
            "no summary of what it is for: the owner or an administrator adds one on the "
            "artifact page (Change the title and summary), the API's describe, or registry "
            "describe --summary"
        )
    if missing:
        anchor = "#owner" if artifact.owner_id is None else "#describe"
        return Verdict(False, "; ".join(missing), f"{url}{anchor}")
    assert artifact.owner is not None
    return Verdict(True, f"registered as {artifact.path}, owned by {artifact.owner.username}", url)


def _dataset_lineage(s: Subject) -> Verdict:
    version = s.version
    datasets = list(
        VersionDependency.objects.filter(
            version=version, upstream__artifact__artifact_class__slug=ArtifactClass.DATASET
        )
        .select_related("upstream__artifact__artifact_class", "upstream__artifact__tenant")
        .order_by("reference")
    )
    reason = version.metadata.get("no_datasets")
    if datasets and reason:
        return Verdict(
            False,
            "it says it uses no dataset (no_datasets) yet depends on "
            + ", ".join(d.upstream.path for d in datasets)
            + ": publish a new version with one or the other",
            _publish_url(version),
        )
    if datasets:
        pins = ", ".join(f"{d.upstream.path}#{d.upstream.manifest_sha256[:12]}" for d in datasets)
        return Verdict(True, f"pinned dataset versions: {pins}", version.get_absolute_url())
    if isinstance(reason, str) and reason.strip():
        return Verdict(True, f"uses no dataset: {reason.strip()}", version.get_absolute_url())
    return Verdict(
        False,
        "no dataset version among its dependencies and no no_datasets reason: publish a new "
        "version that depends on the dataset versions it was trained or evaluated on (the "
        "publish form's Depends on, the API's dependencies, or registry publish --depends), "
        "or that says why it uses none (metadata no_datasets, --no-datasets)",
        _publish_url(version),
    )


def _classification(s: Subject) -> Verdict:
    value = s.version.metadata.get("determinism")
    if value in Determinism.values:
        return Verdict(True, f"classified {Determinism(value).label.lower()}")
    choices = " or ".join(Determinism.values)
    return Verdict(
        False,
        _republish(f"not classified {choices}", "determinism"),
        _publish_url(s.version),
    )


def _metadata_text(key: str, what: str) -> Callable[[Subject], Verdict]:
    def check(s: Subject) -> Verdict:
        value = s.version.metadata.get(key)
        if isinstance(value, str) and value.strip():
            text = " ".join(value.split())
            return Verdict(True, text if len(text) <= 160 else text[:157] + "...")
        return Verdict(False, _republish(f"no {what}", key), _publish_url(s.version))

    return check


# --- Evaluated -----------------------------------------------------------------------------


def _evidence_url(s: Subject) -> str:
    return _change_url(s, "evidence") if s.change is not None else _propose_url(s.version)


def _how_to_attach(s: Subject) -> str:
    where = s.change.reference if s.change is not None else "a change request proposing it"
    return f"attach an evaluation report to {where} (change page, API or CI)"


def _baseline_metrics(s: Subject) -> Verdict:
    measured = [r for r in s.reports if r.metrics]
    if measured:
        names = ", ".join(sorted(measured[0].metrics))
        return Verdict(
            True, f"{len(measured)} report(s); the newest measures {names}", _evidence_url(s)
        )
    return Verdict(
        False, f"no evaluation report with metrics: {_how_to_attach(s)}", _evidence_url(s)
    )


def _policy_conformance(s: Subject) -> Verdict:
    """The policy scan passed. A waiver lets a failed scan through the change's gates, but the
    violations it found are still there: this criterion asks for none."""
    if s.change is None:
        return _no_change(s)
    url = _change_url(s, "checks")
    verdict = next((v for v in s.verdicts if v.kind == CheckKind.POLICY), None)
    if verdict is None:
        return Verdict(
            True,
            f"no policy scan applies to {s.version.artifact.artifact_class.slug} artifacts in "
            f"{s.change.reference}",
            url,
        )
    if verdict.run is not None and verdict.run.status == CheckStatus.PASSED:
        return Verdict(True, f"the policy check of {s.change.reference} passed", url)
    if verdict.waived:
        return Verdict(
            False,
            f"the policy check of {s.change.reference} found violations; waiver "
            f"{verdict.waivers[0].reference} excuses the check, not the violations: fix them "
            "and re-run it",
            url,
        )
    return Verdict(
        False,
        f"{verdict.blocked_by} on {s.change.reference}: fix the violations and re-run it",
        url,
    )


def _baseline_tests(s: Subject) -> Verdict:
    tested = [r for r in s.reports if r.test_run_ids]
    if tested:
        return Verdict(True, f"test runs {', '.join(tested[0].test_run_ids)}", _evidence_url(s))
    return Verdict(
        False,
        f"no evaluation report names its test runs (test_run_ids): {_how_to_attach(s)}",
        _evidence_url(s),
    )


def _reproducibility(s: Subject) -> Verdict:
    url = _evidence_url(s)
    tolerance = s.policy.reproducibility_tolerance
    seeded = [r for r in s.reports if r.seed and r.rng]
    for newest in seeded:
        twin = next(
            (r for r in seeded if r is not newest and (r.seed, r.rng) == (newest.seed, newest.rng)),
            None,
        )
        if twin is None:
            continue
        shared = sorted(set(newest.metrics) & set(twin.metrics))
        if not shared:
            return Verdict(
                False,
                f"the two runs with seed {newest.seed} and RNG {newest.rng} share no metric",
                url,
            )
        apart = [
            f"{name}: {newest.metrics[name]} vs {twin.metrics[name]}"
            for name in shared
            if abs(float(newest.metrics[name]) - float(twin.metrics[name])) > tolerance
        ]
        if apart:
            return Verdict(
                False,
                f"two runs with seed {newest.seed} and RNG {newest.rng} disagree beyond the "
                f"tolerance {tolerance:g}: {'; '.join(apart)}",
                url,
            )
        return Verdict(
            True,
            f"two runs with seed {newest.seed} and RNG {newest.rng} agree within {tolerance:g} "
            f"on {', '.join(shared)}",
            url,
        )
    return Verdict(
        False,
        f"needs two evaluation reports with the same seed and RNG ({len(seeded)} report(s) "
        f"give both): {_how_to_attach(s)}",
        url,
    )


def _bias_checks(s: Subject) -> Verdict:
    checked = [r for r in s.reports if r.bias]
    if checked:
        return Verdict(
            True, f"bias measured: {', '.join(sorted(checked[0].bias))}", _evidence_url(s)
        )
    return Verdict(
        False,
        f"no evaluation report has a bias summary (bias): {_how_to_attach(s)}",
        _evidence_url(s),
    )


def _words(name: str) -> set[str]:
    return set(re.split(r"[^a-z0-9]+", name.lower()))


def report_gaps(report: object) -> list[str]:
    """What an evaluation report lacks of a complete one (metrics, bias, seed, RNG)."""
    metrics = getattr(report, "metrics", {}) or {}
    words = set().union(*(_words(n) for n in metrics)) if metrics else set()
    gaps = [asked for asked, accepted in REPORT_METRICS if not words & set(accepted)]
    if not getattr(report, "bias", None):
        gaps.append("bias summary")
    if not getattr(report, "seed", ""):
        gaps.append("seed")
    if not getattr(report, "rng", ""):
        gaps.append("RNG")
    return gaps


def _evaluation_report(s: Subject) -> Verdict:
    url = _evidence_url(s)
    if not s.reports:
        return Verdict(False, f"no evaluation report: {_how_to_attach(s)}", url)
    judged = [(report_gaps(r), r) for r in s.reports]
    complete = next((r for gaps, r in judged if not gaps), None)
    if complete is not None:
        return Verdict(
            True, f"report {complete.sha256[:12]} of {complete.created_at:%Y-%m-%d}", url
        )
    gaps, closest = min(judged, key=lambda pair: len(pair[0]))
    return Verdict(
        False,
        f"the most complete report ({closest.sha256[:12]}) lacks {', '.join(gaps)}: "
        f"{_how_to_attach(s)} with them",
        url,
    )


# --- Approved ------------------------------------------------------------------------------


def _change_gates(s: Subject) -> Verdict:
    if s.change is None:
        return _no_change(s)
    url = _change_url(s, "checks")
    blocked = [v.blocked_by for v in s.verdicts if v.blocked_by is not None]
    if blocked:
        return Verdict(False, f"{s.change.reference}: {'; '.join(blocked)}", url)
    return Verdict(
        True,
        f"every required check of {s.change.reference} passed "
        f"({', '.join(v.label for v in s.verdicts)})",
        url,
    )


def _action_eligible_signoff(s: Subject) -> Verdict:
    if not s.version.artifact.action_eligible:
        return Verdict(True, "not action-eligible: no extra sign-off")
    if s.change is None:
        return _no_change(s)
    url = _change_url(s, "approvals")
    status = s.approvals
    slot = next(
        (x for x in status.slots if x.requirement == Requirement.REVIEWER and x.approval), None
    )
    if slot is not None:
        return Verdict(True, f"reviewer {slot.approval.approver.username} approved", url)
    asked = Requirement.REVIEWER in s.change.requirements
    return Verdict(
        False,
        f"action-eligible: {s.change.reference} needs a reviewer's approval"
        + ("" if asked else " (its approval policy did not ask for one: revise and resubmit)"),
        url,
    )


def _governance_review(s: Subject) -> Verdict:
    if s.change is None:
        return _no_change(s)
    url = _change_url(s, "approvals")
    if s.change.status in (ChangeStatus.APPROVED, ChangeStatus.PROMOTED, ChangeStatus.ROLLED_BACK):
        when = f" on {s.change.decided_at:%Y-%m-%d}" if s.change.decided_at else ""
        return Verdict(True, f"{s.change.reference} was approved{when}", url)
    return Verdict(
        False,
        f"{s.change.reference} is {s.change.get_status_display().lower()}: it needs every "
        "required approval",
        url,
    )


def _rollout_plan(s: Subject) -> Verdict:
    if s.change is None:
        return _no_change(s)
    strategy = s.change.rollout_strategy
    if strategy in RolloutStrategy.values:
        return Verdict(
            True, f"rolls out as {RolloutStrategy(strategy).label}", _change_url(s, "rollout")
        )
    return Verdict(
        False,
        f"{s.change.reference} names no rollout strategy: revise it",
        reverse("reviews:change-edit", kwargs={"reference": s.change.reference}),
    )


def _rollback_point(s: Subject) -> Verdict:
    if s.change is None:
        return _no_change(s)
    url = _change_url(s, "rollback-plan")
    if not s.change.rollback_plan.strip():
        return Verdict(False, f"{s.change.reference} has no rollback plan: revise it", url)
    current = s.item.current if s.item is not None else None
    if current is not None and current.pk != s.version.pk:
        return Verdict(
            True, f"rolls back to {current.version} ({current.manifest_sha256[:12]})", url
        )
    return Verdict(True, "first version to become active: rolling back means switching it off", url)


def _signed_approval(s: Subject) -> Verdict:
    if s.change is None:
        return _no_change(s)
    approves = s.live_approves
    if not approves:
        return Verdict(
            False,
            f"no live approval of {s.change.reference} revision {s.change.revision}",
            _change_url(s, "approvals"),
        )
    names = ", ".join(f"{a.approver.username} ({a.requirement})" for a in approves)
    return Verdict(
        True,
        f"approved by {names} on revision {s.change.revision}, in the signed record",
        reverse("reviews:change-record", kwargs={"reference": s.change.reference}),
    )


def _deployment_checklist(s: Subject) -> Verdict:
    from reviews.models import DeploymentChecklist

    if s.change is None:
        return _no_change(s)
    url = _change_url(s, "deployment-checklist")
    done = (
        DeploymentChecklist.objects.filter(change=s.change, revision=s.change.revision)
        .select_related("completed_by")
        .order_by("-created_at")
        .first()
    )
    if done is None:
        return Verdict(
            False,
            f"no deployment checklist for {s.change.reference} revision {s.change.revision}: "
            "complete it on the change page (resource envelope, scaling thresholds, logging "
            "and tracing, kill switch)",
            url,
        )
    who = done.completed_by.username if done.completed_by else "system"
    return Verdict(True, f"completed by {who} on {done.created_at:%Y-%m-%d}", url)


def _owner_authorisation(s: Subject) -> Verdict:
    if s.change is None:
        return _no_change(s)
    owner = s.version.artifact.owner
    if owner is None:
        return Verdict(
            False,
            "the artifact has no accountable owner: an administrator sets one on the artifact page",
            f"{s.version.artifact.get_absolute_url()}#owner",
        )
    url = _change_url(s, "approvals")
    if any(a.approver_id == owner.pk for a in s.live_approves):
        return Verdict(True, f"the owner, {owner.username}, approved {s.change.reference}", url)
    return Verdict(
        False,
        f"the owner, {owner.username}, has not approved {s.change.reference} revision "
        f"{s.change.revision}",
        url,
    )


# --- Active (watched) ----------------------------------------------------------------------


def _not_monitored(_s: Subject) -> Verdict:
    return Verdict(False, NO_MONITORING)


def _alert_routing(s: Subject) -> Verdict:
    owner = s.version.artifact.owner
    url = f"{s.version.artifact.get_absolute_url()}#owner"
    if owner is None:
        return Verdict(False, "no owner to alert: an administrator sets one", url)
    if not owner.is_active:
        return Verdict(False, f"the owner, {owner.username}, is deactivated: hand it over", url)
    if not owner.email:
        return Verdict(False, f"the owner, {owner.username}, has no email address", url)
    return Verdict(True, f"alerts go to {owner.username} <{owner.email}>")


BUILTIN: tuple[Criterion, ...] = (
    Criterion(
        "inventory",
        Stage.DRAFT,
        "Inventory entry",
        "The artifact is registered with an accountable owner and a summary.",
        _inventory,
    ),
    Criterion(
        "dataset_lineage",
        Stage.DRAFT,
        "Dataset lineage",
        "The dataset versions it uses are dependencies pinned by hash, or it says why it uses none.",
        _dataset_lineage,
    ),
    Criterion(
        "classification",
        Stage.DRAFT,
        "Deterministic or probabilistic",
        "The version is classified deterministic or probabilistic.",
        _classification,
    ),
    Criterion(
        "evaluation_plan",
        Stage.DRAFT,
        "Evaluation plan",
        "The version states how it will be evaluated.",
        _metadata_text("evaluation_plan", "evaluation plan"),
    ),
    Criterion(
        "risk_note",
        Stage.DRAFT,
        "Risk note",
        "The version carries a risk note.",
        _metadata_text("risk_note", "risk note"),
    ),
    Criterion(
        "baseline_metrics",
        Stage.EVALUATED,
        "Baseline metrics",
        "An evaluation report with metrics is attached.",
        _baseline_metrics,
    ),
    Criterion(
        "policy_conformance",
        Stage.EVALUATED,
        "No critical policy violations",
        "The change's policy check passed (a waiver excuses the check, not the violations).",
        _policy_conformance,
    ),
    Criterion(
        "baseline_tests",
        Stage.EVALUATED,
        "Baseline tests executed",
        "An evaluation report names the test runs it came from.",
        _baseline_tests,
    ),
    Criterion(
        "reproducibility",
        Stage.EVALUATED,
        "Reproducibility confirmed",
        "Two evaluation runs with the same seed and RNG agree within the policy's tolerance.",
        _reproducibility,
    ),
    Criterion(
        "bias_checks",
        Stage.EVALUATED,
        "Bias checks run",
        "An evaluation report has a bias summary.",
        _bias_checks,
    ),
    Criterion(
        "evaluation_report",
        Stage.EVALUATED,
        "Evaluation report",
        "A report with accuracy or utility, calibration, stability, latency, cost, throughput, "
        "a bias summary, seed and RNG.",
        _evaluation_report,
    ),
    Criterion(
        "change_gates",
        Stage.APPROVED,
        "Change gates met",
        "Every required check of the change passed (or is waived).",
        _change_gates,
    ),
    Criterion(
        "action_eligible_signoff",
        Stage.APPROVED,
        "Reviewer sign-off (action-eligible)",
        "A reviewer approved the change when the artifact is action-eligible.",
        _action_eligible_signoff,
    ),
    Criterion(
        "governance_review",
        Stage.APPROVED,
        "Governance review",
        "The change request is approved.",
        _governance_review,
    ),
    Criterion(
        "rollout_plan",
        Stage.APPROVED,
        "Rollout plan",
        "The change names the rollout strategy it will start.",
        _rollout_plan,
    ),
    Criterion(
        "rollback_point",
        Stage.APPROVED,
        "Rollback point",
        "The change has a rollback plan and a version to return to (or switching off).",
        _rollback_point,
    ),
    Criterion(
        "signed_approval",
        Stage.APPROVED,
        "Signed approval",
        "A live approval of the change's current revision, in its signed record.",
        _signed_approval,
    ),
    Criterion(
        "deployment_checklist",
        Stage.APPROVED,
        "Deployment checklist",
        "The deployment checklist is completed for the change's current revision.",
        _deployment_checklist,
    ),
    Criterion(
        "owner_authorisation",
        Stage.APPROVED,
        "Authorised by the owner",
        "The artifact's accountable owner approved the change.",
        _owner_authorisation,
    ),
    Criterion(
        "monitoring",
        Stage.ACTIVE,
        "Monitoring and drift hooks",
        "Telemetry arrives for the version.",
        _not_monitored,
    ),
    Criterion(
        "post_deploy_verification",
        Stage.ACTIVE,
        "Post-deploy verification",
        "The deployed version was verified after deployment.",
        _not_monitored,
    ),
    Criterion(
        "alert_routing",
        Stage.ACTIVE,
        "Alert routing",
        "The owner is an active user with an email address to alert.",
        _alert_routing,
    ),
)

for _builtin in BUILTIN:
    register(_builtin)
