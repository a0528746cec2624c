"""The registry's API shows what promotion did: the active version and each version's stage."""

from __future__ import annotations

from typing import Any

from reviews import services
from reviews.choices import CheckStatus
from reviews.models import CheckRun


def test_artifact_and_version_api_show_active_version_and_stage(
    open_change: Any, people: dict[str, Any], prompt_v1: Any, prompt_v2: Any, token_client: Any
) -> None:
    change = open_change(prompt_v1)
    services.evidence_attach(change=change, actor=None, version=prompt_v1, metrics={"safety": 0.9})
    services.change_submit(change=change, actor=people["author"])
    for run in CheckRun.objects.filter(change=change, status=CheckStatus.PENDING):
        services.check_execute(run=run)
    for who in ("reviewer", "admin"):
        services.approval_decide(change=change, actor=people[who], decision="approve")
    services.change_promote(change=change, actor=people["admin"])
    client = token_client(people["reviewer"])
    base = "/api/v1/artifacts/prompt/acme/qualify-lead/"
    assert client.get(base).json()["active_version"] == "1.0.0"
    assert client.get(base + "versions/1.0.0/").json()["stage"] == "active"
    assert client.get(base + "versions/1.1.0/").json()["stage"] == "draft"


def test_version_page_shows_stage_and_links_to_a_new_change(
    client: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    client.force_login(people["author"])
    page = client.get(prompt_v1.get_absolute_url()).content.decode()
    assert '<dd id="stage">Draft</dd>' in page
    assert "/reviews/changes/new/?propose=prompt/acme/qualify-lead/1.0.0" in page
    form = client.get(
        "/reviews/changes/new/?propose=prompt/acme/qualify-lead/1.0.0"
    ).content.decode()
    assert "prompt/acme/qualify-lead/1.0.0</textarea>" in form
