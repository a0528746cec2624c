"""Promotion, rollback and the safety switch are deliberate acts on the pages: the page says what
will change, the POST needs a fresh password (governance.kernel.reauth), and someone who may
not act sees no form and is refused with the service's reason."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory

from governance.kernel import reauth
from governance.kernel.errors import DomainError, Forbidden
from governance.kernel.events.models import Event
from registry.models import Artifact
from reviews.choices import ChangeStatus
from reviews.models import ChangeRequest
from tests.pages import between
from tests.reviews.test_views import PASSWORD, approved, page, promoted, signed_in, url

pytestmark = pytest.mark.django_db
ARTIFACT_URL = "/registry/prompt/acme/qualify-lead/"
ROLLBACK_URL = "/reviews/rollback/prompt/acme/qualify-lead/"
DEACTIVATE_URL = "/reviews/deactivate/prompt/acme/qualify-lead/"


def active(version: Any) -> Any:
    return Artifact.objects.get(pk=version.artifact_id).active_version


def status_of(change: ChangeRequest) -> str:
    change.refresh_from_db()
    return change.status


def test_the_kernel_helper_refuses_without_a_fresh_password(people: dict[str, Any]) -> None:
    request = RequestFactory().post("/")
    request.user = people["admin"]
    request.session = {}  # type: ignore[assignment]
    with pytest.raises(DomainError, match="Confirm your password"):
        reauth.require_password(request, "")
    with pytest.raises(Forbidden, match="not your password"):
        reauth.require_password(request, "wrong")
    reauth.require_password(request, PASSWORD)
    reauth.require_password(request, "")  # confirmed a moment ago: not asked again


def test_reviews_reauth_still_imports(people: dict[str, Any]) -> None:
    from reviews import reauth as old

    assert old.confirm is reauth.confirm
    assert old.recently_confirmed is reauth.recently_confirmed


def test_promotion_shows_what_changes_and_needs_the_password(
    open_change: Any, people: dict[str, Any], prompt_v1: Any, prompt_v2: Any
) -> None:
    promoted(open_change, people, prompt_v1)
    change = approved(open_change, people, prompt_v2)
    client = signed_in(people["admin"])
    html = page(client, url(change))
    summary = between(html, 'id="promotion-summary"', "</ul>")
    assert (
        f"{change.reference} makes prompt/acme/qualify-lead {prompt_v2.version} active, "
        f"replacing {prompt_v1.version}." in summary
    )
    form = between(html, 'id="promote-form"', "</form>")
    assert 'type="password"' in form
    events = Event.objects.count()

    # Post/redirect/get: a refusal comes back to the promotion section of the change page,
    # said once, atop the promote form itself (announced: role=alert).
    response = client.post(url(change, "promote"), follow=True)
    assert response.redirect_chain == [(f"{url(change)}#promotion", 302)]
    html = response.content.decode()
    form = between(html, 'id="promote-form"', "</form>")
    assert form.count('role="alert"') == 1
    assert "Confirm your password: it is a deliberate act." in between(
        form, 'role="alert"', "</div>"
    )
    assert html.count("Confirm your password: it is a deliberate act.") == 1
    assert between(html, 'id="promotion"', 'id="promote-form"').count('role="alert"') == 0
    response = client.post(url(change, "promote"), {"password": "wrong"}, follow=True)
    assert response.redirect_chain == [(f"{url(change)}#promotion", 302)]
    html = response.content.decode()
    form = between(html, 'id="promote-form"', "</form>")
    assert "That is not your password. Nothing changed." in between(form, 'role="alert"', "</div>")
    assert html.count("That is not your password. Nothing changed.") == 1
    assert 'type="password"' in form  # asked again
    # The refusal is said once: the next GET shows the form clean.
    assert 'role="alert"' not in between(page(client, url(change)), 'id="promotion"', "</section>")
    assert status_of(change) == ChangeStatus.APPROVED
    assert active(prompt_v2) == prompt_v1
    assert Event.objects.count() == events

    response = client.post(url(change, "promote"), {"password": PASSWORD})
    assert response.status_code == 302
    assert status_of(change) == ChangeStatus.PROMOTED
    assert active(prompt_v2) == prompt_v2


def test_a_first_promotion_says_none_is_active(
    open_change: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    change = approved(open_change, people, prompt_v1)
    html = page(signed_in(people["admin"]), url(change))
    summary = between(html, 'id="promotion-summary"', "</ul>")
    assert f"makes prompt/acme/qualify-lead {prompt_v1.version} active; none is active now." in (
        summary
    )


def test_promotion_confirmed_lately_is_not_asked_again(
    open_change: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    change = approved(open_change, people, prompt_v1)
    client = signed_in(people["admin"])
    assert client.post("/reviews/confirm/", {"password": PASSWORD}).status_code == 302
    form = between(page(client, url(change)), 'id="promote-form"', "</form>")
    assert 'type="password"' not in form
    assert client.post(url(change, "promote")).status_code == 302
    assert status_of(change) == ChangeStatus.PROMOTED


def test_who_may_not_promote_sees_no_form_and_is_told_why(
    open_change: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    change = approved(open_change, people, prompt_v1)
    reviewer = signed_in(people["reviewer"])
    html = page(reviewer, url(change))
    assert 'id="promote-form"' not in html
    assert "Promote</button>" not in html
    response = reviewer.post(url(change, "promote"), {"password": PASSWORD}, follow=True)
    assert response.redirect_chain == [(f"{url(change)}#promotion", 302)]
    # No form to put it on: the predicate's reason atop the promotion section.
    section = between(response.content.decode(), 'id="promotion"', "</section>")
    assert "administrator" in between(section, 'role="alert"', "</div>")
    assert status_of(change) == ChangeStatus.APPROVED


def test_rollback_from_the_change_page_says_what_it_restores(
    open_change: Any, people: dict[str, Any], prompt_v1: Any, prompt_v2: Any
) -> None:
    promoted(open_change, people, prompt_v1)
    change = promoted(open_change, people, prompt_v2)
    client = signed_in(people["admin"])
    html = page(client, url(change))
    form = between(html, 'class="rollback-form"', "</form>")
    assert (
        f"Rollback restores prompt/acme/qualify-lead {prompt_v1.version} "
        f"(replacing {prompt_v2.version}); {change.reference} reads rolled back." in form
    )
    assert 'name="password"' in form
    assert 'class="rollback-form"' not in page(signed_in(people["reviewer"]), url(change))


def test_rollback_needs_the_password(
    open_change: Any, people: dict[str, Any], prompt_v1: Any, prompt_v2: Any
) -> None:
    promoted(open_change, people, prompt_v1)
    change = promoted(open_change, people, prompt_v2)
    client = signed_in(people["admin"])
    html = page(client, ARTIFACT_URL)
    assert (
        f"Rollback makes the version you choose active again in place of {prompt_v2.version} "
        f"(by default {prompt_v1.version}, the version it replaced)."
        in between(html, 'id="rollback-summary"', "</p>")
    )
    events = Event.objects.count()
    response = client.post(ROLLBACK_URL, {"reason": "bad answers"})
    assert response.status_code == 400
    assert "Confirm your password" in response.content.decode()
    response = client.post(ROLLBACK_URL, {"reason": "bad answers", "password": "wrong"})
    assert response.status_code == 403
    assert "That is not your password" in response.content.decode()
    assert active(prompt_v2) == prompt_v2
    assert Event.objects.count() == events

    response = client.post(ROLLBACK_URL, {"reason": "bad answers", "password": PASSWORD})
    assert response.status_code == 302
    assert active(prompt_v2) == prompt_v1
    assert status_of(change) == ChangeStatus.ROLLED_BACK


def test_who_may_not_roll_back_is_told_why(
    open_change: Any, people: dict[str, Any], prompt_v1: Any, prompt_v2: Any
) -> None:
    promoted(open_change, people, prompt_v1)
    promoted(open_change, people, prompt_v2)
    reviewer = signed_in(people["reviewer"])
    html = page(reviewer, ARTIFACT_URL)
    assert 'id="rollback"' not in html
    assert 'id="deactivate"' not in html
    response = reviewer.post(ROLLBACK_URL, {"reason": "bad", "password": PASSWORD})
    assert response.status_code == 403
    assert "administrator" in response.content.decode()
    response = reviewer.post(DEACTIVATE_URL, {"reason": "bad", "password": PASSWORD})
    assert response.status_code == 403
    assert "administrator" in response.content.decode()
    assert active(prompt_v2) == prompt_v2


def test_the_safety_switch_needs_the_password(
    open_change: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    promoted(open_change, people, prompt_v1)
    client = signed_in(people["admin"])
    html = page(client, ARTIFACT_URL)
    assert (
        f"The safety switch leaves prompt/acme/qualify-lead with no active version "
        f"(now {prompt_v1.version})." in html
    )
    assert client.post(DEACTIVATE_URL, {"reason": "leaks"}).status_code == 400
    assert client.post(DEACTIVATE_URL, {"reason": "leaks", "password": "x"}).status_code == 403
    assert active(prompt_v1) == prompt_v1
    response = client.post(DEACTIVATE_URL, {"reason": "leaks", "password": PASSWORD})
    assert response.status_code == 302
    assert active(prompt_v1) is None
