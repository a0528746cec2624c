"""The Approved stage's deployment checklist: the service, the change page, the API and the CLI."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pytest
from django.core.management import call_command

from governance.kernel.errors import Conflict, DomainError, Forbidden
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.events.services import canonical
from reviews import selectors, services
from reviews.models import DeploymentChecklist
from tests.cli import refused
from tests.reviews.test_views import section

pytestmark = pytest.mark.django_db

PARTS = {
    "resource_envelope": "2 vCPU, 4 GiB, 20k tokens/min, $40/day",
    "scaling_thresholds": "scale out at 70% CPU; at most 8 replicas",
    "logging_tracing": "every request traced (OTel), prompts hashed in the logs",
    "kill_switch": "flag qualify-lead.enabled; on-call admins flip it",
}


def complete(change: Any, actor: Any, **overrides: str) -> DeploymentChecklist:
    return services.deployment_checklist_complete(
        change=change, actor=actor, **{**PARTS, "notes": "", **overrides}
    )


@pytest.fixture
def change(open_change: Any, prompt_v1: Any) -> Any:
    return open_change(prompt_v1)


def test_the_author_completes_it_for_the_current_revision_with_its_hash_and_event(
    change: Any, people: dict[str, Any]
) -> None:
    done = complete(change, people["author"], notes="  load-tested  ")
    assert done.revision == change.revision == 1
    assert done.notes == "load-tested"
    body = {"change": change.reference, "revision": 1, **PARTS, "notes": "load-tested"}
    assert done.sha256 == hashlib.sha256(canonical(body)).hexdigest()
    event = Event.objects.get(kind=EventKind.DEPLOYMENT_CHECKLIST_COMPLETED)
    assert event.actor == people["author"]
    assert event.payload["checklist_sha256"] == done.sha256
    assert event.payload["kill_switch"] == PARTS["kill_switch"]
    assert selectors.deployment_checklist_of(change) == done


def test_an_administrator_may_and_others_may_not(change: Any, people: dict[str, Any]) -> None:
    assert complete(change, people["admin"]).completed_by == people["admin"]
    with pytest.raises(Forbidden, match="Only the author or an administrator"):
        complete(change, people["reviewer"])
    assert DeploymentChecklist.objects.count() == 1


@pytest.mark.parametrize("part", list(PARTS))
def test_a_blank_part_is_refused_naming_it(change: Any, people: dict[str, Any], part: str) -> None:
    with pytest.raises(DomainError) as refusal:
        complete(change, people["author"], **{part: "   "})
    assert refusal.value.field == part
    assert not DeploymentChecklist.objects.exists()
    assert not Event.objects.filter(kind=EventKind.DEPLOYMENT_CHECKLIST_COMPLETED).exists()


def test_a_closed_change_refuses_it(change: Any, people: dict[str, Any]) -> None:
    services.change_withdraw(change=change, actor=people["author"])
    with pytest.raises(Conflict, match="withdrawn; its deployment checklist is closed"):
        complete(change, people["author"])


def test_a_revision_leaves_it_outdated_and_the_latest_of_the_revision_counts(
    change: Any, people: dict[str, Any]
) -> None:
    first = complete(change, people["author"])
    services.change_revise(change=change, actor=people["author"], reason="typo", title="Tuned")
    change.refresh_from_db()
    assert selectors.deployment_checklist_of(change) is None
    assert selectors.deployment_checklist_latest(change) == first
    complete(change, people["author"], notes="again")
    newer = complete(change, people["admin"], notes="and again")
    assert selectors.deployment_checklist_of(change) == newer
    assert newer.revision == 2


# --- the change page ------------------------------------------------------------------------


def _form(**overrides: str) -> dict[str, str]:
    return {f"checklist-{k}": v for k, v in {**PARTS, "notes": "", **overrides}.items()}


def _post(client: Any, change: Any, data: dict[str, str]) -> Any:
    return client.post(f"{change.get_absolute_url()}deployment-checklist/", data)


def test_the_page_offers_the_form_records_it_and_shows_who_and_when(
    client: Any, change: Any, people: dict[str, Any]
) -> None:
    client.force_login(people["author"])
    page = section(client.get(change.get_absolute_url()).content.decode(), "deployment-checklist")
    assert 'id="deployment-checklist-missing"' in page
    assert 'id="deployment-checklist-form"' in page
    resp = _post(client, change, _form())
    assert resp.status_code == 302
    assert resp["Location"] == f"{change.get_absolute_url()}#deployment-checklist"
    assert DeploymentChecklist.objects.get(change=change).completed_by == people["author"]
    client.force_login(people["reviewer"])  # may not complete it: sees it, no form
    page = section(client.get(change.get_absolute_url()).content.decode(), "deployment-checklist")
    assert "completed</span> for revision 1 by author" in page
    assert PARTS["scaling_thresholds"] in page
    assert 'id="deployment-checklist-form"' not in page


def test_a_blank_part_comes_back_on_the_form_with_its_error_post_redirect_get(
    client: Any, change: Any, people: dict[str, Any]
) -> None:
    client.force_login(people["author"])
    resp = _post(client, change, _form(kill_switch=""))
    assert resp.status_code == 302
    assert resp["Location"] == f"{change.get_absolute_url()}#deployment-checklist-form"
    page = client.get(resp["Location"]).content.decode()
    form = section(page, "deployment-checklist")
    assert 'role="alert"' in form  # the error summary atop the form
    assert "This field is required." in form
    assert PARTS["resource_envelope"] in form  # what was typed is kept
    assert not DeploymentChecklist.objects.exists()


def test_someone_not_offered_the_form_is_told_why(
    client: Any, change: Any, people: dict[str, Any]
) -> None:
    client.force_login(people["reviewer"])
    resp = _post(client, change, _form())
    assert resp.status_code == 302
    page = client.get(resp["Location"]).content.decode()
    assert "Only the author or an administrator can complete the deployment checklist." in page
    assert not DeploymentChecklist.objects.exists()


def test_the_page_marks_an_outdated_checklist(
    client: Any, change: Any, people: dict[str, Any]
) -> None:
    complete(change, people["author"])
    services.change_revise(change=change, actor=people["author"], reason="typo", title="Tuned")
    client.force_login(people["author"])
    page = section(client.get(change.get_absolute_url()).content.decode(), "deployment-checklist")
    assert 'id="deployment-checklist-outdated"' in page
    assert "the change is at revision 2" in page
    assert "Complete the deployment checklist</h3>" not in page or "(revision 2)" in page
    assert PARTS["kill_switch"] in section(page, "deployment-checklist-form")  # prefilled


# --- API ------------------------------------------------------------------------------------


def _api(change: Any) -> str:
    return f"/api/v1/change-requests/{change.reference}/deployment-checklist/"


def test_api_completes_and_reads_it(token_client: Any, change: Any, people: dict[str, Any]) -> None:
    client = token_client(people["author"])
    assert client.get(_api(change)).status_code == 404
    resp = client.post(_api(change), {**PARTS, "notes": "n"}, format="json")
    assert resp.status_code == 201, resp.json()
    body = resp.json()
    assert body["revision"] == 1
    assert body["outdated"] is False
    assert body["completed_by"] == "author"
    assert body["sha256"] == DeploymentChecklist.objects.get().sha256
    assert client.get(_api(change)).json()["sha256"] == body["sha256"]


def test_api_refusals_name_the_field(
    token_client: Any, change: Any, people: dict[str, Any]
) -> None:
    blank = token_client(people["author"]).post(
        _api(change), {**PARTS, "logging_tracing": " "}, format="json"
    )
    assert blank.status_code == 400
    assert blank.json()["error"]["field"] == "logging_tracing"
    other = token_client(people["reviewer"]).post(_api(change), PARTS, format="json")
    assert other.status_code == 403
    assert not DeploymentChecklist.objects.exists()


def test_the_schema_documents_the_endpoint(client: Any, people: dict[str, Any]) -> None:
    client.force_login(people["admin"])
    schema = client.get("/api/v1/schema/", {"format": "json"}).json()
    path = schema["paths"]["/api/v1/change-requests/{reference}/deployment-checklist/"]
    assert {"get", "post"} <= set(path)


# --- CLI ------------------------------------------------------------------------------------


def _args(change: Any, **overrides: str) -> list[str]:
    args = ["checklist", change.reference]
    for name, value in {**PARTS, **overrides}.items():
        args += [f"--{name.replace('_', '-')}", value]
    return args


def test_cli_completes_it_and_show_says_so(change: Any, people: dict[str, Any]) -> None:
    out = io.StringIO()
    call_command("changes", *_args(change), "--as", "author", stdout=out)
    done = DeploymentChecklist.objects.get()
    assert out.getvalue().strip() == (
        f"{change.reference}: deployment checklist of revision 1 completed ({done.sha256})"
    )
    shown = io.StringIO()
    call_command("changes", "show", change.reference, stdout=shown)
    assert "deployment checklist: revision 1 by author" in shown.getvalue()


def test_cli_refuses_a_blank_part_in_one_line(change: Any) -> None:
    assert refused("changes", *_args(change, kill_switch=" ")) == (
        "kill_switch: The deployment checklist needs its kill-switch readiness."
    )


def test_the_section_costs_the_page_one_query_however_many_were_completed(
    client: Any,
    change: Any,
    people: dict[str, Any],
    django_assert_num_queries: Any,
    django_assert_max_num_queries: Any,
) -> None:
    complete(change, people["author"])
    client.force_login(people["author"])
    client.get(change.get_absolute_url())  # warm the session and caches
    with django_assert_max_num_queries(200) as one:
        client.get(change.get_absolute_url())
    for n in range(3):
        complete(change, people["admin"], notes=f"again {n}")
    with django_assert_num_queries(len(one.captured_queries)):
        client.get(change.get_absolute_url())
