"""``governance.kernel.views``: the one way pages meet the domain's errors."""

from __future__ import annotations

from typing import Any

import pytest
from django import forms
from django.contrib.messages import get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.backends.cache import SessionStore
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from governance.kernel.errors import Conflict, DomainError, Forbidden, NotFound
from governance.kernel.views import DomainErrorMiddleware, attempt, say_above, submit


class NameForm(forms.Form):
    name = forms.CharField(max_length=10)
    note = forms.CharField(required=False)


def page_request() -> HttpRequest:
    request = RequestFactory().get("/somewhere/")
    request.session = SessionStore()
    request._messages = FallbackStorage(request)  # type: ignore[attr-defined]
    return request


def said(request: HttpRequest) -> list[str]:
    return [str(m) for m in get_messages(request)]


def middleware() -> DomainErrorMiddleware:
    return DomainErrorMiddleware(lambda request: HttpResponse("ok"))


def test_the_middleware_passes_a_response_through():
    assert middleware()(page_request()).content == b"ok"


def test_not_found_out_of_a_view_is_the_404_page():
    response = middleware().process_exception(page_request(), NotFound("No such thing."))
    assert response is not None
    assert response.status_code == 404


def test_forbidden_out_of_a_view_is_the_403_page_with_its_reason():
    reason = "Only an administrator of 'acme' can do that."
    response = middleware().process_exception(page_request(), Forbidden(reason))
    assert response is not None
    assert response.status_code == 403
    assert "Only an administrator of &#x27;acme&#x27; can do that." in response.content.decode()


@pytest.mark.parametrize("error", [DomainError("bad"), Conflict("taken"), ValueError("boom")])
def test_other_errors_are_left_to_django(error: Exception):
    assert middleware().process_exception(page_request(), error) is None


def test_submit_calls_the_action_with_the_cleaned_data():
    seen: list[dict[str, Any]] = []

    def action(data: dict[str, Any]) -> str:
        seen.append(data)
        return f"made {data['name']}"

    done = submit(NameForm({"name": "tone"}), action)
    assert (done.ok, done.status, done.result) == (True, 200, "made tone")
    assert seen == [{"name": "tone", "note": ""}]


def test_submit_does_not_call_the_action_for_an_invalid_form():
    def action(data: dict[str, Any]) -> None:
        raise AssertionError("called")

    form = NameForm({"name": ""})
    assert submit(form, action) == submit(form, action, invalid_status=200)
    done = submit(form, action, invalid_status=400)
    assert (done.ok, done.status, done.result) == (False, 400, None)
    assert "name" in form.errors


def refuse(error: DomainError) -> Any:
    def action(data: dict[str, Any]) -> None:
        raise error

    return action


def test_a_refusal_naming_a_field_goes_on_that_field_with_its_status():
    form = NameForm({"name": "tone"})
    done = submit(form, refuse(Conflict("Already taken.", field="name")))
    assert (done.ok, done.status, done.result) == (False, 409, None)
    assert form.errors == {"name": ["Already taken."]}


def test_aliases_map_a_service_field_to_the_forms():
    form = NameForm({"name": "tone"})
    done = submit(form, refuse(DomainError("Too long.", field="text")), aliases={"text": "note"})
    assert done.status == 400
    assert form.errors == {"note": ["Too long."]}


@pytest.mark.parametrize("field", [None, "owner"])
def test_a_refusal_naming_no_field_of_the_form_goes_above_it(field: str | None):
    form = NameForm({"name": "tone"})
    done = submit(form, refuse(Forbidden("Not yours.", field=field)))
    assert done.status == 403
    assert form.non_field_errors() == ["Not yours."]


def test_say_above_moves_a_forms_errors_to_the_pages_messages():
    request = page_request()
    form = NameForm({"name": "a name far too long"})
    submit(form, refuse(DomainError("never called")))
    form.add_error(None, "Not now.")
    say_above(request, form)
    assert said(request) == ["Ensure this value has at most 10 characters (it has 19).", "Not now."]
    assert not form.errors


def test_say_above_unplaced_only_leaves_the_fields_their_errors():
    request = page_request()
    form = NameForm({"name": "tone"})
    submit(form, refuse(Forbidden("Only an administrator can.")))
    form.add_error("name", "Odd.")
    say_above(request, form, unplaced_only=True)
    assert said(request) == ["Only an administrator can."]
    assert form.errors == {"name": ["Odd."]}


def test_attempt_returns_the_services_result():
    request = page_request()
    done = attempt(request, lambda: "revoked")
    assert (done.ok, done.status, done.result) == (True, 200, "revoked")
    assert said(request) == []


def test_attempt_says_a_refusal_above_the_page_with_its_status():
    request = page_request()

    def revoke() -> None:
        raise Conflict("This token is already revoked.", field="token")

    done = attempt(request, revoke)
    assert (done.ok, done.status, done.result) == (False, 409, None)
    assert said(request) == ["This token is already revoked."]


@pytest.mark.django_db
def test_an_unmatched_url_is_the_404_page_with_the_menu_for_a_signed_in_user(client, make_user):
    """base.html must not read resolver_match through a filter argument (None on a 404)."""
    client.force_login(make_user("someone"))
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert '<nav aria-label="Main">' in page
    assert 'aria-current="page"' not in page
    assert "There is nothing here" in page
