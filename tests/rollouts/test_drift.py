"""Deployment drift: a client reporting a hash other than the approved one alerts the owner once
per episode, is resolved when reports match again, and shows on the artifact and readiness pages."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, cast

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Tenant
from governance.kernel.errors import DomainError
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.models import Notification
from registry.models import Version
from rollouts import services
from rollouts.models import Application, DeploymentDrift, Slot, TelemetryCounter
from rollouts.telemetry_services import telemetry_ingest
from tests.factories import TenantFactory, make_artifact, publish
from tests.pages import page_queries
from tests.reviews.conftest import PINS

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)
OTHER = "ab" * 32


def row(version: Version, sha: str | None, **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "application": "sales-agent",
        "slot": "qualifyLead",
        "version": version.version,
        "bucket_start": (NOW - timedelta(minutes=1)).isoformat(),
        "requests": 10,
    }
    if sha is not None:
        body["manifest_sha256"] = sha
    body.update(kw)
    return body


class Batches:
    def __init__(self) -> None:
        self.n = 0

    def send(self, tenant: Tenant, rows: list[dict[str, Any]], *, at: Any = NOW) -> Any:
        self.n += 1
        return telemetry_ingest(
            principal_or_tenant=tenant, batch_id=f"b-{self.n}", rows=rows, now=at
        )


@pytest.fixture
def batches() -> Batches:
    return Batches()


def events(kind: str) -> list[Event]:
    return list(Event.objects.filter(kind=kind).order_by("seq"))


def drift_notes() -> list[Notification]:
    return list(Notification.objects.filter(subject__startswith="deployment-drift:"))


@pytest.mark.usefixtures("slot")
def test_drift_alerts_once_per_episode_and_resolves_when_reports_match(
    prompt_v1: Version, acme: Tenant, people: dict[str, Any], batches: Batches, settings: Any
) -> None:
    settings.TELEMETRY_DRIFT_RESOLVE_SECONDS = 300
    approved = prompt_v1.manifest_sha256
    batches.send(acme, [row(prompt_v1, approved), row(prompt_v1, None)])
    assert not DeploymentDrift.objects.exists()  # matching and hash-less rows: no drift

    batches.send(acme, [row(prompt_v1, OTHER.upper(), requests=7)])  # case is ignored
    batches.send(acme, [row(prompt_v1, OTHER, requests=5)], at=NOW + timedelta(seconds=30))
    (drift,) = DeploymentDrift.objects.all()
    assert (drift.tenant, drift.version, drift.resolved_at) == (acme, prompt_v1, None)
    assert (drift.approved_sha256, drift.reported_sha256, drift.requests) == (approved, OTHER, 12)
    (detected,) = events(EventKind.DEPLOYMENT_DRIFT_DETECTED)  # once, not per batch
    assert detected.actor is None
    assert detected.payload["slot"] == "sales-agent.qualifyLead"
    assert detected.payload["tenant"] == "acme"
    assert (detected.payload["approved_sha256"], detected.payload["reported_sha256"]) == (
        approved,
        OTHER,
    )
    (note,) = drift_notes()  # the owner, once
    assert note.user == people["admin"]
    assert "acme runs unapproved content on sales-agent.qualifyLead" in note.title
    assert TelemetryCounter.objects.filter(requests=12).count() == 0  # rows stored as sent
    assert TelemetryCounter.objects.count() == 4

    # Matching reports while a differing one came lately: still open (a fleet does not flap).
    batches.send(acme, [row(prompt_v1, approved)], at=NOW + timedelta(seconds=60))
    assert DeploymentDrift.objects.get().resolved_at is None
    later = NOW + timedelta(seconds=30 + 301)
    batches.send(acme, [row(prompt_v1, approved)], at=later)
    drift.refresh_from_db()
    assert drift.resolved_at == later
    (resolved,) = events(EventKind.DEPLOYMENT_DRIFT_RESOLVED)
    assert resolved.payload["resolved_at"] == later.isoformat()
    (note,) = drift_notes()
    assert note.resolved_at is not None

    # A new differing report is a new episode: alerted again.
    batches.send(acme, [row(prompt_v1, OTHER)], at=later + timedelta(seconds=10))
    assert DeploymentDrift.objects.filter(resolved_at__isnull=True).count() == 1
    assert len(events(EventKind.DEPLOYMENT_DRIFT_DETECTED)) == 2
    assert len([n for n in drift_notes() if n.resolved_at is None]) == 1


@pytest.mark.usefixtures("slot")
def test_a_bad_hash_refuses_the_batch_naming_the_field(
    prompt_v1: Version, acme: Tenant, batches: Batches
) -> None:
    with pytest.raises(DomainError) as refused:
        batches.send(acme, [row(prompt_v1, None), row(prompt_v1, "1234")])
    assert refused.value.field == "rows[1].manifest_sha256"
    assert not TelemetryCounter.objects.exists()
    assert not DeploymentDrift.objects.exists()


def test_the_openapi_schema_documents_the_hash(client: Client, people: dict[str, Any]) -> None:
    client.force_login(people["admin"])
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    row_schema = schema["components"]["schemas"]["TelemetryRow"]
    assert "manifest_sha256" in row_schema["properties"]
    assert "manifest_sha256" not in row_schema.get("required", [])


def _drifting_slots(
    n: int, application: Application, people: dict[str, Any], batches: Batches, platform: Tenant
) -> None:
    """n more slots of other artifacts, each with an open drift episode reported by a new tenant."""
    for _ in range(n):
        k = Slot.objects.count()
        artifact = make_artifact(platform, "prompt", f"extra-{k}", owner=people["admin"])
        version = publish(artifact, impact="major", text=f"Extra {k} {{{{ x }}}}.", metadata=PINS)
        from tests.rollouts.conftest import promote_versions

        promote_versions(people, version, tenant=platform)
        services.slot_create(application=application, name=f"s{k}", artifact=artifact,
                             description="", actor=people["admin"])  # fmt: skip
        tenant = cast(Tenant, TenantFactory(slug=f"t{k}"))
        batches.send(tenant, [row(version, OTHER, slot=f"s{k}")])


def test_drift_shows_on_the_artifact_and_readiness_pages_in_flat_queries(
    client: Client, slot: Slot, prompt_v1: Version, acme: Tenant, platform: Tenant,
    application: Application, people: dict[str, Any], batches: Batches,
) -> None:  # fmt: skip
    client.force_login(people["admin"])
    batches.send(acme, [row(prompt_v1, OTHER)])
    artifact_url = slot.artifact.get_absolute_url()
    first, html = page_queries(client, artifact_url)
    drifts = re.findall(r'<tr data-drift="([^"]+)">', html)
    assert drifts == ["acme:sales-agent.qualifyLead"]
    assert OTHER[:12] in html
    assert prompt_v1.manifest_sha256[:12] in html
    ready_first, ready = page_queries(client, "/governance/readiness/")
    assert re.findall(r'<tr data-drift="([^"]+)">', ready) == ["acme:sales-agent.qualifyLead"]

    # More episodes, on this artifact (other tenants) and on others: the same query counts.
    for k in range(3):
        tenant = cast(Tenant, TenantFactory(slug=f"other-{k}"))
        batches.send(tenant, [row(prompt_v1, OTHER)])
    _drifting_slots(2, application, people, batches, platform)
    again, html = page_queries(client, artifact_url)
    assert again == first
    assert len(re.findall(r'<tr data-drift="', html)) == 4
    ready_again, ready = page_queries(client, "/governance/readiness/")
    assert ready_again == ready_first
    assert len(re.findall(r'<tr data-drift="', ready)) == 6


def test_outside_the_artifact_s_tenant_only_one_s_own_tenants_drift_is_listed(
    slot: Slot, prompt_v1: Version, acme: Tenant, globex: Tenant, make_user: Any,
    batches: Batches,
) -> None:  # fmt: skip
    from rollouts.drift import open_drifts_for_artifact

    batches.send(acme, [row(prompt_v1, OTHER)])
    batches.send(globex, [row(prompt_v1, OTHER)])
    viewer = make_user("globex-viewer", globex="member")
    seen = open_drifts_for_artifact(slot.artifact, user=viewer, member=False)
    assert [d.tenant.slug for d in seen] == ["globex"]
    everyone = open_drifts_for_artifact(slot.artifact, user=viewer, member=True)
    assert sorted(d.tenant.slug for d in everyone) == ["acme", "globex"]
