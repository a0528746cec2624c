"""A failing check says what would make it pass, and links to where to do it."""

from __future__ import annotations

import pytest

from reviews import services
from reviews.choices import CheckKind, CheckStatus
from reviews.models import CheckRun
from tests.factories import promoted_change, publish
from tests.reviews.test_services import evaluation, run_checks
from tests.reviews.test_views import section

pytestmark = pytest.mark.django_db


def test_an_unpinned_prompt_without_evidence_links_to_the_publish_form_and_the_evidence_form(
    client, people, prompt, open_change
):
    unpinned = publish(prompt, impact="major", text="Qualify {{ customer }}.")
    change = services.change_submit(change=open_change(unpinned), actor=people["author"])
    results = run_checks(change)
    assert results[CheckKind.MODEL_PINS] == CheckStatus.FAILED
    assert results[CheckKind.OFFLINE_EVALUATION] == CheckStatus.FAILED
    pins = CheckRun.objects.get(change=change, kind=CheckKind.MODEL_PINS)
    assert "pin one in its metadata" in pins.summary
    assert "metadata.pinned_models" in pins.log
    evaluation_run = CheckRun.objects.get(change=change, kind=CheckKind.OFFLINE_EVALUATION)
    assert evaluation_run.summary.startswith("missing evaluation: attach an evaluation report")

    client.force_login(people["author"])
    html = client.get(change.get_absolute_url()).content.decode()
    pins_cell = section(html, "verdict-model_pins").split("</td>")[0]
    assert 'href="/registry/prompt/acme/qualify-lead/publish/#metadata"' in pins_cell
    assert "Pin a model" in pins_cell
    evidence_cell = section(html, "verdict-offline_evaluation").split("</td>")[0]
    assert 'href="#evidence-form"' in evidence_cell
    assert "Attach an evaluation report" in evidence_cell
    assert 'id="evidence-form"' in html


def test_a_passing_check_offers_no_fix(client, people, prompt_v1, open_change):
    change = open_change(prompt_v1)
    evaluation(change, prompt_v1)
    change = services.change_submit(change=change, actor=people["author"])
    assert set(run_checks(change).values()) == {CheckStatus.PASSED}
    client.force_login(people["reviewer"])
    html = client.get(change.get_absolute_url()).content.decode()
    assert "To pass:" not in section(html, "checks")


def test_a_regression_says_so(people, prompt_v1, prompt_v2, open_change):
    promoted_change(people, prompt_v1)
    change = open_change(prompt_v2)
    evaluation(change, prompt_v2, safety=0.5)
    change = services.change_submit(change=change, actor=people["author"])
    assert run_checks(change)[CheckKind.OFFLINE_EVALUATION] == CheckStatus.FAILED
    run = CheckRun.objects.get(change=change, kind=CheckKind.OFFLINE_EVALUATION)
    assert run.summary == "safety regression against the current version"
