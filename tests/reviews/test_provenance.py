"""The version page's lifecycle evidence and provenance block: the signed metadata, dataset
lineage (each dataset with its version and hash, linked), the checksum and signature, and the
approvers reviews registers through registry/hooks.py; its queries do not grow per dependency."""

from __future__ import annotations

import html as htmllib
import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry import hooks
from reviews import provenance
from tests.factories import promoted_change
from tests.reviews.conftest import PINS, make_artifact, publish

pytestmark = pytest.mark.django_db
EVIDENCE = {
    "determinism": "probabilistic",
    "evaluation_plan": "Run eval-suite 2.0.0 on the golden corpus.",
    "risk_note": "May over-qualify small leads.",
    "pr_url": "https://git.example.com/acme/prompts/pull/42",
}


def _dataset(acme: Any, slug: str) -> Any:
    return publish(
        make_artifact(acme, "dataset", slug),
        data={"uri": f"s3://data/{slug}.parquet", "sha256": "b" * 64, "rows": 10},
        impact="major",
    )


def _block(page: str) -> str:
    return htmllib.unescape(page.split('id="provenance"')[1].split("</section>")[0])


def _dd(block: str, ident: str) -> str:
    return block.split(f'id="{ident}"')[1].split("</dd>")[0]


def test_the_hooks_answer_with_reviews_registered(people, prompt):
    version = publish(prompt, "Qualify {{ customer }}.", "major", metadata=PINS)
    change = promoted_change(people, version)
    rows = hooks.provenance_rows(version)
    assert rows == provenance.version_provenance(version)
    assert rows[0][0] == "Approved in"
    assert rows[0][2] == change.get_absolute_url()
    refs = hooks.evidence_by_version([version])[version.pk]
    assert [r["sha256"] for r in refs] == [
        r["sha256"] for r in provenance.evidence_refs([version])[version.pk]
    ]
    assert refs
    assert {r["change"] for r in refs} == {change.reference}


def test_version_page_shows_evidence_lineage_checksum_signature_and_approvers(
    client, acme, people, prompt
):
    leads, calls = _dataset(acme, "leads"), _dataset(acme, "calls")
    template = publish(make_artifact(acme, "prompt-template", "tone"), "Hi {{ n }}.", "major")
    version = publish(
        prompt,
        "Qualify {{ customer }}.",
        "major",
        metadata={**PINS, **EVIDENCE},
        dependencies=[leads.pinned, calls.pinned, template.pinned],
    )
    change = promoted_change(people, version)
    client.force_login(people["author"])
    block = _block(client.get(version.get_absolute_url()).content.decode())

    assert "Probabilistic" in _dd(block, "provenance-determinism")
    assert EVIDENCE["evaluation_plan"] in _dd(block, "provenance-evaluation-plan")
    assert EVIDENCE["risk_note"] in _dd(block, "provenance-risk-note")
    lineage = _dd(block, "provenance-datasets")
    found = re.findall(r'data-dataset="([^"]+)"><a href="([^"]+)">[^<]+</a> (\S+) <code', lineage)
    assert found == [
        ("dataset/acme/calls", calls.get_absolute_url(), "1.0.0"),
        ("dataset/acme/leads", leads.get_absolute_url(), "1.0.0"),
    ]
    assert leads.manifest_sha256 in lineage
    assert calls.manifest_sha256 in lineage
    assert "prompt-template" not in lineage  # lineage is the dataset dependencies only
    assert f'href="{EVIDENCE["pr_url"]}"' in _dd(block, "provenance-pr")
    assert version.manifest_sha256 in _dd(block, "provenance-checksum")
    assert version.content_sha256 in _dd(block, "provenance-checksum")
    assert version.key_id in _dd(block, "provenance-signature")
    assert f'<a href="{change.get_absolute_url()}">{change.reference} (promoted' in block
    approvers = re.findall(r'class="provenance-row">([^<]+)</dd>', block)
    assert [a.split(",")[0] for a in approvers] == [
        "reviewer as reviewer: approve",
        "admin as administrator: approve",
    ]


def test_version_page_says_what_is_missing(client, people, prompt):
    version = publish(prompt, "Qualify {{ customer }}.", "major", metadata=PINS)
    client.force_login(people["author"])
    block = _block(client.get(version.get_absolute_url()).content.decode())
    assert "not classified" in _dd(block, "provenance-determinism")
    assert "not declared" in _dd(block, "provenance-datasets")
    assert "none yet: no approved change proposes this version" in block


def test_no_datasets_reason_is_shown_as_lineage(client, people, prompt):
    version = publish(
        prompt, "Qualify {{ customer }}.", "major", metadata={**PINS, "no_datasets": "Rules only."}
    )
    client.force_login(people["author"])
    block = _block(client.get(version.get_absolute_url()).content.decode())
    assert "Uses no dataset: Rules only." in _dd(block, "provenance-datasets")


def _page_queries(client: Any, version: Any) -> int:
    with CaptureQueriesContext(connection) as ctx:
        resp = client.get(version.get_absolute_url())
    assert resp.status_code == 200
    return len(ctx.captured_queries)


def test_version_page_queries_do_not_grow_with_dataset_dependencies(client, acme, people):
    sets = [_dataset(acme, f"set-{i}") for i in range(4)]
    one = publish(
        make_artifact(acme, "prompt", "one"),
        "Qualify {{ c }}.",
        "major",
        metadata=PINS,
        dependencies=[sets[0].pinned],
    )
    many = publish(
        make_artifact(acme, "prompt", "many"),
        "Qualify {{ c }}.",
        "major",
        metadata=PINS,
        dependencies=[s.pinned for s in sets],
    )
    client.force_login(people["author"])
    _page_queries(client, one)  # warm per-session caches
    assert _page_queries(client, many) == _page_queries(client, one)
    assert _block(client.get(many.get_absolute_url()).content.decode()).count("data-dataset=") == 4
