"""Comments anchored to a line of a change's diff: checked by the service, accepted by the API
and the page, shown under their line at their revision and quoted (not moved) after it."""

from __future__ import annotations

from typing import Any

import pytest

from governance.kernel.errors import DomainError
from governance.kernel.events.models import Event
from reviews import services
from reviews.models import Comment
from tests.reviews.conftest import PINS, publish
from tests.reviews.test_views import page, promoted, section, signed_in, url

V2_TEXT = "Qualify {{ customer }}.\nAsk about the budget.\nThank them.\n"


@pytest.fixture
def change(open_change: Any, people: dict[str, Any], prompt: Any, prompt_v1: Any) -> Any:
    """A draft change from live v1 (one line) to a three-line v2."""
    promoted(open_change, people, prompt_v1)
    v2 = publish(prompt, text=V2_TEXT, metadata=PINS)
    return open_change(v2)


def anchor(line: int, side: str = "new", path: str = "prompt/acme/qualify-lead") -> Any:
    return services.LineAnchor(path=path, side=side, line=line)


# --- the service ----------------------------------------------------------------------------


def test_a_line_comment_keeps_its_revision_side_line_and_text(change: Any, people: Any) -> None:
    comment = services.comment_add(
        change=change, actor=people["reviewer"], body="Which budget?", anchor=anchor(2)
    )
    comment.refresh_from_db()
    assert (comment.revision, comment.path, comment.side, comment.line) == (
        1,
        "prompt/acme/qualify-lead",
        "new",
        2,
    )
    assert comment.line_text == "Ask about the budget."
    event = Event.objects.filter(kind="change_request.commented").latest("seq")
    assert event.payload["line"] == 2
    assert event.payload["side"] == "new"
    assert event.payload["revision"] == 1


@pytest.mark.parametrize(
    ("bad", "field", "words"),
    [
        (anchor(4), "line", "Line 4 is not in"),
        (anchor(2, side="old"), "line", "Line 2 is not in 1.0.0"),
        (anchor(1, side="left"), "side", "old or the new side"),
        (anchor(0), "line", "1 or more"),
        (anchor(1, path="prompt/acme/other"), "path", "not an item of this change"),
    ],
)
def test_an_anchor_outside_the_diff_is_refused_on_its_field(
    change: Any, people: Any, bad: Any, field: str, words: str
) -> None:
    with pytest.raises(DomainError) as exc:
        services.comment_add(change=change, actor=people["reviewer"], body="?", anchor=bad)
    assert exc.value.field == field
    assert words in exc.value.message
    assert not Comment.objects.exists()


def test_a_new_artifact_has_no_lines_to_comment_on(
    open_change: Any, people: Any, prompt_v1: Any
) -> None:
    first = open_change(prompt_v1)  # nothing is active yet: no diff
    with pytest.raises(DomainError) as exc:
        services.comment_add(change=first, actor=people["reviewer"], body="?", anchor=anchor(1))
    assert exc.value.field == "path"
    assert "no diff" in exc.value.message


def test_a_partial_anchor_names_what_is_missing() -> None:
    assert services.line_anchor("", "", None) is None
    for parts, field in [
        (("", "new", 1), "path"),
        (("prompt/acme/x", "", 1), "side"),
        (("prompt/acme/x", "new", None), "line"),
    ]:
        with pytest.raises(DomainError) as exc:
            services.line_anchor(*parts)
        assert exc.value.field == field


# --- the API -----------------------------------------------------------------------------------


def test_the_api_accepts_an_anchor_and_refuses_a_bad_one(
    change: Any, people: Any, token_client: Any
) -> None:
    client = token_client(people["reviewer"])
    endpoint = f"/api/v1/change-requests/{change.reference}/comment/"
    done = client.post(
        endpoint,
        {"body": "Say *thanks*.", "path": "prompt/acme/qualify-lead", "side": "new", "line": 3},
        format="json",
    )
    assert done.status_code == 201, done.content
    [comment] = done.json()["comments"]
    assert (comment["revision"], comment["side"], comment["line"]) == (1, "new", 3)
    assert comment["line_text"] == "Thank them."
    refused = client.post(
        endpoint,
        {"body": "?", "path": "prompt/acme/qualify-lead", "side": "new", "line": 9},
        format="json",
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["field"] == "line"
    missing = client.post(endpoint, {"body": "?", "line": 1}, format="json")
    assert missing.status_code == 400
    assert missing.json()["error"]["field"] == "path"
    assert Comment.objects.count() == 1


def test_the_openapi_schema_documents_the_anchor(client: Any, people: Any) -> None:
    client.force_login(people["reviewer"])
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "The item's artifact path (class/tenant/slug), for a line comment." in schema


# --- the change page ---------------------------------------------------------------------------


def test_line_numbers_link_to_the_comment_form_prefilled(change: Any, people: Any) -> None:
    client = signed_in(people["reviewer"])
    html = page(client, url(change))
    link = "?path=prompt%2Facme%2Fqualify-lead&amp;side=new&amp;line=2#comment-form"
    assert link in section(html, "items-heading")
    form = page(client, url(change) + "?path=prompt/acme/qualify-lead&side=new&line=2")
    comments = section(form, "comments")
    assert "Commenting on line 2 of prompt/acme/qualify-lead (proposed version" in comments
    assert "Ask about the budget." in comments
    assert 'name="line" value="2"' in comments
    assert 'name="side" value="new"' in comments


def test_a_line_comment_shows_under_its_line_then_quoted_after_a_revision(
    change: Any, people: Any, prompt: Any
) -> None:
    client = signed_in(people["reviewer"])
    posted = client.post(
        url(change, "comment"),
        {
            "body": "Which **budget**? <script>alert(1)</script>",
            "path": "prompt/acme/qualify-lead",
            "side": "new",
            "line": "2",
        },
    )
    assert posted.status_code == 302
    html = page(client, url(change))
    split = html.split('class="diff diff-split"')[1].split("</table>")[0]
    rows = split.split("<tr")
    at = next(i for i, r in enumerate(rows) if "Ask about the budget." in r)
    assert 'class="diff-notes"' in rows[at + 1]
    assert "Which <strong>budget</strong>?" in rows[at + 1]
    assert "<script>" not in html.split('id="comments"')[1]
    unified = html.split('class="diff diff-unified"')[1].split("</table>")[0]
    assert unified.count('class="diff-notes"') == 1

    # A new revision: the comment stays on revision 1, quoted, and leaves the diff.
    v3 = publish(prompt, text="Qualify {{ customer }}.\nThank them.\n", metadata=PINS)
    services.change_revise(change=change, actor=people["author"], reason="shorter", proposed=[v3])
    html = page(client, url(change))
    assert 'class="diff-notes"' not in html
    comments = section(html, "comments")
    assert "on revision 1" in comments
    assert "Ask about the budget." in comments


def test_a_bad_line_is_said_on_the_form_and_nothing_is_written(change: Any, people: Any) -> None:
    client = signed_in(people["reviewer"])
    response = client.post(
        url(change, "comment"),
        {"body": "?", "path": "prompt/acme/qualify-lead", "side": "new", "line": "40"},
        follow=True,
    )
    # Post/redirect/get: back on the change page, at the comment form, the error on top.
    assert response.redirect_chain == [(f"{url(change)}#comment-form", 302)]
    assert "Line 40 is not in" in section(response.content.decode(), "comments")
    assert not Comment.objects.exists()


def test_the_change_page_query_count_does_not_grow_with_line_comments(
    change: Any, people: Any, django_assert_num_queries: Any
) -> None:
    client = signed_in(people["reviewer"])
    services.comment_add(change=change, actor=people["author"], body="a", anchor=anchor(1))
    client.get(url(change))
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        client.get(url(change))
    for line in (1, 2, 3, 3):
        services.comment_add(change=change, actor=people["author"], body="b", anchor=anchor(line))
    with django_assert_num_queries(len(one.captured_queries)):
        html = page(client, url(change))
    assert html.count('class="line-comment"') == 2 * 5  # both layouts carry each comment
