"""Attaching evaluation evidence from the change page: a report file or typed metrics."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from reviews import services
from reviews.choices import CheckKind, CheckStatus
from reviews.models import CheckRun, EvaluationReport
from tests.reviews.test_services import run_checks
from tests.reviews.test_views import section

pytestmark = pytest.mark.django_db


def _url(change: Any) -> str:
    return f"/reviews/changes/{change.reference}/evidence/"


def _typed(proposed: Any, **fields: str) -> dict[str, str]:
    body = {
        "evidence-version": proposed.pinned,
        "evidence-metrics": "accuracy=0.93\nlatency_p95_ms=410",
        "evidence-safety": "safety=0.98",
        "evidence-test_run_ids": "ci-42, ci-43",
        "evidence-seed": "7",
    }
    body.update({f"evidence-{k}": v for k, v in fields.items()})
    return body


def _field(html: str, name: str) -> str:
    """The paragraph of one evidence-form field, where its error shows."""
    return html.split(f'for="id_evidence-{name}"')[1].split("</p>")[0].replace("&#x27;", "'")


@pytest.fixture
def in_review(open_change, people, prompt_v1):
    """A submitted change with no evidence: its offline evaluation fails."""
    change = services.change_submit(change=open_change(prompt_v1), actor=people["author"])
    assert run_checks(change)[CheckKind.OFFLINE_EVALUATION] == CheckStatus.FAILED
    return change


def test_the_author_sees_the_form_and_typed_metrics_attach_and_rerun_the_checks(
    client, people, prompt_v1, in_review
):
    client.force_login(people["author"])
    html = client.get(in_review.get_absolute_url()).content.decode()
    form = section(html, "evidence")
    assert 'id="evidence-form"' in form
    assert f'value="{prompt_v1.pinned}"' in form
    resp = client.post(_url(in_review), _typed(prompt_v1))
    assert resp.status_code == 302
    assert resp["Location"] == f"{in_review.get_absolute_url()}#checks"
    report = EvaluationReport.objects.get(change=in_review)
    assert report.version == prompt_v1
    assert report.metrics == {"accuracy": 0.93, "latency_p95_ms": 410}
    assert report.safety == {"safety": 0.98}
    assert report.test_run_ids == ["ci-42", "ci-43"]
    assert report.seed == "7"
    assert report.submitted_by == people["author"]
    pending = CheckRun.objects.filter(change=in_review, status=CheckStatus.PENDING)
    assert set(pending.values_list("kind", flat=True)) == {CheckKind.OFFLINE_EVALUATION}
    assert run_checks(in_review)[CheckKind.OFFLINE_EVALUATION] == CheckStatus.PASSED


def test_a_report_file_in_the_apis_shape_attaches(client, people, prompt_v1, in_review):
    client.force_login(people["author"])
    body = {
        "metrics": {"accuracy": 0.9},
        "safety": {"harmful_content_pass_rate": 0.995},
        "bias": {"gender_gap": 0.01},
        "test_run_ids": ["ci-7"],
        "notes": "nightly suite",
    }
    upload = SimpleUploadedFile("report.json", json.dumps(body).encode(), "application/json")
    resp = client.post(
        _url(in_review), {"evidence-version": prompt_v1.pinned, "evidence-report": upload}
    )
    assert resp.status_code == 302
    report = EvaluationReport.objects.get(change=in_review)
    assert report.metrics == {"accuracy": 0.9}
    assert report.safety == {"harmful_content_pass_rate": 0.995}
    assert report.bias == {"gender_gap": 0.01}
    assert report.notes == "nightly suite"
    assert run_checks(in_review)[CheckKind.OFFLINE_EVALUATION] == CheckStatus.PASSED


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"metrics": "accuracy=high"}, "metrics", "'accuracy' must be a number"),
        ({"metrics": "accuracy"}, "metrics", "is not name=value"),
        ({"metrics": "", "safety": ""}, "metrics", "Type at least one metric"),
        ({"safety": "safety=1e999"}, "safety", "Numbers must be finite"),
        ({"version": "qualify-lead:9.9.9#" + "0" * 64}, "version", "not one of the available"),
    ],
)
def test_bad_typed_input_is_a_400_on_its_field_and_nothing_is_written(
    client, people, prompt_v1, in_review, fields, field, message
):
    client.force_login(people["author"])
    resp = client.post(_url(in_review), _typed(prompt_v1, **fields))
    assert resp.status_code == 400
    assert message in _field(resp.content.decode(), field)
    assert not EvaluationReport.objects.filter(change=in_review).exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "The file is not JSON"),
        (b"[1, 2]", "must hold a JSON object"),
        (json.dumps({"safety": {"safety": 1}}).encode(), "In the file, 'metrics'"),
        (json.dumps({"metrics": {"accuracy": "high"}}).encode(), "Must be a number"),
    ],
)
def test_a_bad_report_file_is_a_400_on_the_file_field(
    client, people, prompt_v1, in_review, content, message
):
    client.force_login(people["author"])
    upload = SimpleUploadedFile("report.json", content, "application/json")
    resp = client.post(
        _url(in_review), {"evidence-version": prompt_v1.pinned, "evidence-report": upload}
    )
    assert resp.status_code == 400
    assert message in _field(resp.content.decode(), "report")
    assert not EvaluationReport.objects.filter(change=in_review).exists()


def test_a_file_and_typed_metrics_together_are_refused(client, people, prompt_v1, in_review):
    client.force_login(people["author"])
    upload = SimpleUploadedFile("r.json", b'{"metrics": {"a": 1}}', "application/json")
    resp = client.post(_url(in_review), {**_typed(prompt_v1), "evidence-report": upload})
    assert resp.status_code == 400
    assert "not both" in _field(resp.content.decode(), "report")
    assert not EvaluationReport.objects.exists()


def test_a_closed_change_offers_no_form_and_refuses_with_the_services_reason(
    client, people, prompt_v1, open_change
):
    change = open_change(prompt_v1)
    services.change_withdraw(change=change, actor=people["author"], reason="not needed")
    client.force_login(people["author"])
    assert 'id="evidence-form"' not in client.get(change.get_absolute_url()).content.decode()
    resp = client.post(_url(change), _typed(prompt_v1))
    assert resp.status_code == 409
    assert "evidence is closed" in resp.content.decode()
    assert not EvaluationReport.objects.exists()


def test_get_on_the_form_address_goes_back_to_the_change(client, people, in_review):
    client.force_login(people["author"])
    resp = client.get(_url(in_review))
    assert resp.status_code == 302
    assert resp["Location"] == f"{in_review.get_absolute_url()}#evidence"


def test_another_tenants_change_is_a_404(client, make_user, globex, prompt_v1, in_review):
    client.force_login(make_user("g", globex="administrator"))
    assert client.post(_url(in_review), _typed(prompt_v1)).status_code == 404
    assert not EvaluationReport.objects.exists()
