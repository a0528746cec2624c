"""Registry pages: list, artifact, version, diff, publishing from the browser."""

from __future__ import annotations

import re

import pytest

from registry import services
from registry.models import Version
from tests.registry.conftest import publish

pytestmark = pytest.mark.django_db
V1 = "Qualify leads for {{ product }}. Customer: {{ customer }}."


def test_list_filters_and_links(client, author, prompt):
    client.force_login(author)
    html = client.get("/registry/").content.decode()
    assert 'href="/registry/prompt/acme/qualify-lead/"' in html
    assert (
        "qualify-lead"
        not in client.get("/registry/?artifact_class=model").content.decode().split("<tbody>")[1]
    )


def test_artifact_page_history_and_bounded_queries(
    client, author, prompt, django_assert_max_num_queries
):
    publish(prompt, V1, "major")
    client.force_login(author)
    url = "/registry/prompt/acme/qualify-lead/"
    client.get(url)
    with django_assert_max_num_queries(40) as few:
        client.get(url)
    for i in range(30):
        publish(prompt, V1 + f" v{i}", "patch")
    with django_assert_max_num_queries(len(few.captured_queries)):
        html = client.get(url).content.decode()
    assert html.count('class="badge badge-ok"') == 25  # one page of 25, each verified
    assert "Page 1 of 2" in html


def test_version_page_shows_content_manifest_and_signature(client, author, prompt):
    v = publish(prompt, V1, "major")
    client.force_login(author)
    html = client.get(v.get_absolute_url()).content.decode()
    assert re.search(r'id="signature-status">verified<', html)
    assert v.manifest_sha256 in html
    assert 'class="highlight"' in html


def test_diff_page_calls_out_contract_changes(client, author, prompt):
    publish(prompt, V1, "major")
    publish(prompt, "Qualify leads for {{ product }}. Account: {{ account_id }}.", "major")
    client.force_login(author)
    html = client.get(
        "/registry/prompt/acme/qualify-lead/v/2.0.0/diff/?against=1.0.0"
    ).content.decode()
    changes = html.split('id="contract-changes"')[1].split("</ul>")[0]
    assert "customer" in changes
    assert "major" in changes
    assert "<del>" in html
    assert "<ins>" in html
    # Both layouts are on the page (CSS shows the unified one on narrow screens), and the line
    # numbers are plain text here: commenting on lines belongs to a change.
    split = html.split('class="diff diff-split"')[1].split("</table>")[0]
    unified = html.split('class="diff diff-unified"')[1].split("</table>")[0]
    assert split.count('class="diff-replace"') == 1
    assert unified.count('class="diff-delete"') == 1
    assert unified.count('class="diff-insert"') == 1
    assert "#comment-form" not in html


def test_publish_from_the_browser(client, author, prompt):
    publish(prompt, V1, "major")
    client.force_login(author)
    page = client.get("/registry/prompt/acme/qualify-lead/publish/").content.decode()
    assert "Qualify leads for {{ product }}" in page  # edit as a new version
    resp = client.post(
        "/registry/prompt/acme/qualify-lead/publish/",
        {"content": V1 + " Be brief.", "impact": "patch", "reason": "shorter", "variables": ""},
    )
    assert resp.status_code == 302
    assert resp["Location"].endswith("/v/1.0.1/")
    bad = client.post(
        "/registry/prompt/acme/qualify-lead/publish/",
        {"content": "Only {{ product }}", "impact": "minor", "reason": "drop customer"},
    )
    assert bad.status_code == 400
    assert "customer" in bad.content.decode()
    assert "major" in bad.content.decode()
    assert Version.objects.count() == 2


def test_new_artifact_form(client, author, acme):
    client.force_login(author)
    resp = client.post(
        "/registry/new/",
        {
            "artifact_class": "prompt",
            "tenant": "acme",
            "slug": "greet",
            "title": "Greet",
            "license": "MIT",
        },
    )
    assert resp.status_code == 302
    assert resp["Location"] == "/registry/prompt/acme/greet/publish/"
    dup = client.post(
        "/registry/new/",
        {
            "artifact_class": "prompt",
            "tenant": "acme",
            "slug": "greet",
            "title": "Greet",
            "license": "MIT",
        },
    )
    assert dup.status_code == 409
    assert "already exists" in dup.content.decode()


def test_other_tenant_pages_are_404(client, prompt, make_user, globex):
    publish(prompt, V1, "major")
    client.force_login(make_user("g", globex="administrator"))
    for url in [
        "/registry/prompt/acme/qualify-lead/",
        "/registry/prompt/acme/qualify-lead/v/1.0.0/",
        "/registry/prompt/acme/qualify-lead/publish/",
    ]:
        assert client.get(url).status_code == 404, url
    assert services  # imported for fixtures


def test_the_publish_form_refuses_an_empty_prompt_and_unused_variables(client, author, prompt):
    client.force_login(author)
    url = "/registry/prompt/acme/qualify-lead/publish/"
    empty = client.post(url, {"content": "", "impact": "major", "reason": "first", "variables": ""})
    assert empty.status_code == 400
    unused = client.post(
        url,
        {
            "content": "Hi {{ product }}.",
            "impact": "major",
            "reason": "x",
            "variables": "product, region",
        },
    )
    assert unused.status_code == 400
    assert "not used in the content: &#x27;region&#x27;" in unused.content.decode()
    assert Version.objects.count() == 0
