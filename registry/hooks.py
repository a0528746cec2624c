"""Questions registry asks the floors above it, answered by functions they register at start-up.

registry must never import reviews or rollouts; they register their answers here in
``ReviewsConfig.ready()`` and ``RolloutsConfig.ready()``. With nothing registered, every
traffic answer is "no traffic", so a deployment without runtime telemetry removes deprecated
versions on schedule as before; the artifact page offers no rollback, and the registry
command's ``rollback`` and ``deactivate`` refuse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Protocol

from governance.kernel.errors import DomainError

#: Takes version ids, ``hours=`` and ``now=``; answers ``{version id: requests served in the
#: last hours}`` (absent = none).
RecentTraffic = Callable[..., dict[Any, int]]

_recent_traffic: list[RecentTraffic] = []


def register_recent_traffic(answer: RecentTraffic) -> None:
    """Register who answers "how many requests did these versions serve lately?" (idempotent)."""
    if answer not in _recent_traffic:
        _recent_traffic.append(answer)


def recent_traffic(
    version_ids: Iterable[Any], *, hours: int = 24, now: datetime | None = None
) -> dict[Any, int]:
    """Requests each version served in the last ``hours`` (summed over every registered answer)."""
    ids = list(version_ids)
    total: dict[Any, int] = {}
    if not ids:
        return total
    for answer in _recent_traffic:
        for version_id, requests in answer(ids, hours=hours, now=now).items():
            total[version_id] = total.get(version_id, 0) + int(requests)
    return total


# --- who uses a version (the version page, the deprecation pages) ----------------------------


class UsageRow(Protocol):
    """Who used a version: a tenant and application, with requests in the last 24 h and 7 d."""

    tenant_slug: str
    application_slug: str
    requests_24h: int
    requests_7d: int


#: Takes versions (or ids) and answers ``{version id: [UsageRow]}`` (absent = no traffic).
UsageSource = Callable[[Iterable[Any]], dict[Any, list[Any]]]
#: Takes an artifact and answers the URL of its usage page ("" if none).
UsageUrl = Callable[[Any], str]

_usage_sources: list[UsageSource] = []
_usage_urls: list[UsageUrl] = []


def register_usage(source: UsageSource, url: UsageUrl | None = None) -> None:
    """Register who answers "who used these versions lately?" (idempotent)."""
    if source not in _usage_sources:
        _usage_sources.append(source)
    if url is not None and url not in _usage_urls:
        _usage_urls.append(url)


def usage_by_version(versions: Iterable[Any]) -> dict[Any, list[Any]]:
    """``{version id: [UsageRow]}`` from every registered source."""
    items = list(versions)
    found: dict[Any, list[Any]] = {}
    for source in _usage_sources:
        for vid, rows in source(items).items():
            found.setdefault(vid, []).extend(rows)
    return found


def usage_for(version: Any) -> list[Any]:
    """Who used ``version`` in the last 7 days (with the last 24 hours), busiest first."""
    return usage_by_version([version]).get(getattr(version, "pk", version), [])


def usage_url(artifact: Any) -> str:
    """The page that says who uses which version of ``artifact`` ("" when none is registered)."""
    for url in _usage_urls:
        if found := url(artifact):
            return found
    return ""


# --- where an artifact serves (the registry list's slot column) ------------------------------


class SlotRow(Protocol):
    """An application slot bound to an artifact: it serves the artifact's active version by
    default; ``overrides`` tenants pin another version, ``rollout`` names one in progress."""

    label: str
    url: str
    overrides: int
    rollout: str


#: Takes artifact ids and answers ``{artifact id: [SlotRow]}`` (absent = bound to no slot).
SlotsSource = Callable[[list[Any]], dict[Any, list[Any]]]

_slot_sources: list[SlotsSource] = []


def register_slots(source: SlotsSource) -> None:
    """Register who answers "which slots are these artifacts bound to?" (idempotent)."""
    if source not in _slot_sources:
        _slot_sources.append(source)


def slots_by_artifact(artifact_ids: Iterable[Any]) -> dict[Any, list[Any]]:
    """``{artifact id: [SlotRow]}`` from every registered source (none registered: no slots)."""
    ids = list(artifact_ids)
    found: dict[Any, list[Any]] = {}
    if not ids:
        return found
    for source in _slot_sources:
        for artifact_id, rows in source(ids).items():
            found.setdefault(artifact_id, []).extend(rows)
    return found


# --- what the floors above offer on the artifact page and in the registry command ------------

#: Takes the viewing user, an artifact and the user's roles in its tenant; answers what the
#: artifact page adds for them (reviews: the rollback and safety-switch forms, or nothing).
ArtifactPanels = Callable[[Any, Any, Any], dict[str, Any]]
#: ``rollback(*, artifact, actor, reason, target, override_reason)``: the activation it made.
Rollback = Callable[..., Any]
#: ``deactivate(*, artifact, actor, reason)``: the activation it made (no active version).
Deactivate = Callable[..., Any]

_artifact_panels: list[ArtifactPanels] = []
_rollbacks: list[Rollback] = []
_deactivations: list[Deactivate] = []


def register_artifact_panels(panels: ArtifactPanels) -> None:
    """Register who adds to the artifact page (idempotent)."""
    if panels not in _artifact_panels:
        _artifact_panels.append(panels)


def artifact_panels(user: Any, artifact: Any, *, roles: Any) -> dict[str, Any]:
    """The artifact page's context from every registered source (none registered: nothing)."""
    context: dict[str, Any] = {}
    for panels in _artifact_panels:
        context.update(panels(user, artifact, roles))
    return context


def register_activation(*, rollback: Rollback, deactivate: Deactivate) -> None:
    """Register who rolls an artifact back and who switches it off (the last one registered)."""
    if rollback not in _rollbacks:
        _rollbacks.append(rollback)
    if deactivate not in _deactivations:
        _deactivations.append(deactivate)


def rollback(**kwargs: Any) -> Any:
    """Restore a version that was active before (``registry rollback``)."""
    if not _rollbacks:
        raise DomainError("Rolling back needs the reviews app, which is not installed.")
    return _rollbacks[-1](**kwargs)


def deactivate(**kwargs: Any) -> Any:
    """Leave an artifact with no active version (``registry deactivate``)."""
    if not _deactivations:
        raise DomainError("The safety switch needs the reviews app, which is not installed.")
    return _deactivations[-1](**kwargs)


# --- the version page's stage checklist ------------------------------------------------------

#: Takes a version and answers its checklist (reviews: the criteria of its current and next
#: stage, met or missing, with their details and links), ready to render.
ChecklistSource = Callable[[Any], Any]

_checklists: list[ChecklistSource] = []


def register_checklist(source: ChecklistSource) -> None:
    """Register who answers "what does this version's stage ask, and is it there?" (idempotent)."""
    if source not in _checklists:
        _checklists.append(source)


def checklist_for(version: Any) -> Any | None:
    """The version's checklist from the last registered source (none registered: None)."""
    if not _checklists:
        return None
    return _checklists[-1](version)


# --- provenance and evidence (the version page's provenance block, export-status) -----------

#: Takes a version; answers provenance rows for its page: ``(label, value, url)`` (url may
#: be ""). reviews: the approvers of the change that approved or promoted it.
ProvenanceSource = Callable[[Any], list[tuple[str, str, str]]]
#: Takes versions; answers ``{version id: [evidence reference]}``, each reference a dict with
#: at least ``kind``, ``sha256`` and ``at`` (ISO 8601 time it was recorded). reviews: its
#: evaluation reports.
EvidenceSource = Callable[[list[Any]], dict[Any, list[dict[str, Any]]]]

_provenance_sources: list[ProvenanceSource] = []
_evidence_sources: list[EvidenceSource] = []


def register_provenance(source: ProvenanceSource) -> None:
    """Register who adds provenance rows to a version page (idempotent)."""
    if source not in _provenance_sources:
        _provenance_sources.append(source)


def provenance_rows(version: Any) -> list[tuple[str, str, str]]:
    """Provenance rows for ``version`` from every registered source (none registered: none)."""
    rows: list[tuple[str, str, str]] = []
    for source in _provenance_sources:
        rows.extend(source(version))
    return rows


def register_evidence(source: EvidenceSource) -> None:
    """Register who answers "what evidence was recorded for these versions?" (idempotent)."""
    if source not in _evidence_sources:
        _evidence_sources.append(source)


def evidence_by_version(versions: Iterable[Any]) -> dict[Any, list[dict[str, Any]]]:
    """``{version id: [evidence reference]}`` from every registered source, oldest first."""
    items = list(versions)
    found: dict[Any, list[dict[str, Any]]] = {}
    if not items:
        return found
    for source in _evidence_sources:
        for vid, refs in source(items).items():
            found.setdefault(vid, []).extend(refs)
    for refs in found.values():
        refs.sort(key=lambda r: (str(r.get("at", "")), str(r.get("kind", "")), str(r["sha256"])))
    return found


# --- notices on the version page (reviews: not re-certified after an emergency) --------------


class VersionNotice(Protocol):
    """A warning the version page shows under its title: a short ``badge``, the ``text`` after
    it, and a link (``url``, ``link`` its words; empty for none). ``key`` names it in the page."""

    key: str
    badge: str
    text: str
    url: str
    link: str


#: Takes a version and answers its notices (absent: none).
VersionNotices = Callable[[Any], list[Any]]

_version_notices: list[VersionNotices] = []


def register_version_notices(source: VersionNotices) -> None:
    """Register who adds notices to the version page (idempotent)."""
    if source not in _version_notices:
        _version_notices.append(source)


def version_notices(version: Any) -> list[Any]:
    """The version page's notices from every registered source (none registered: none)."""
    return [notice for source in _version_notices for notice in source(version)]
