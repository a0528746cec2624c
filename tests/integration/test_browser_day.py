"""Each user's day in the browser, from the home page to done, with nothing but the browser.

After ``seed_demo`` nothing here writes through the ORM or the API: the author publishes a
prompt with a pinned model, opens a change, attaches evaluation evidence on the change page
and submits it; a real Celery worker runs the checks, as in production; the reviewer and the
privacy officer sign off from their home pages (a wrong password first); the administrator
signs off, promotes with confirmation and rolls back. The ORM is only read, to check that
what the pages say is what was stored.

With ``DOCS_SCREENSHOTS=1`` the screenshots land in ``docs/img/day-*.png`` (used by
docs/reviews.md, "A day in the browser"); otherwise in the test's temporary folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from registry import selectors as registry_selectors
from registry.choices import ArtifactClass
from reviews import selectors
from reviews.choices import ChangeStatus, Decision
from reviews.models import Approval, ChangeRequest
from tests.integration.test_browser import browser, log_in, page
from tests.integration.test_browser_reviews import log_out, shot
from tests.integration.workers import redis_broker, start_worker, stop, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
__all__ = ["browser", "page"]  # fixtures, imported for use here

PROMPT = "outage-notice"
NEW_TEXT = (
    "Write the status-page notice for the outage of {{ service }}: what is affected, since "
    "when, and when we update next. Never name a customer or quote their data. No blame, no "
    "guesses."
)
PINNED_MODEL = "gpt-4o-2024-11-20"
TITLE = "Outage notices never name a customer"
REFUSED_IN_CONSOLE = (
    "Failed to load resource: the server responded with a status of 403 (Forbidden)"
)
OFFICER_CHANGE = "Stop echoing personal details"  # seeded: waits on the privacy officer


@pytest.fixture
def broker() -> Iterator[str]:
    yield from redis_broker()


@pytest.fixture
def worker(broker: str, tmp_path: Path) -> Iterator[Any]:
    """A real Celery worker: the checks a submission queues run as they do in production."""
    del broker
    proc = start_worker(tmp_path, name="day")
    try:
        yield proc
    finally:
        stop(proc)


def password_of(username: str) -> str:
    return f"{username}-demo"


def start_the_day(page: Any, username: str) -> None:
    """Log in; the day starts on the home page, "what needs me"."""
    log_in(page, username, password_of(username))
    page.get_by_role("heading", name=f"Welcome, {username}").wait_for()
    assert urlsplit(page.url).path == "/"


def checks_finished(page: Any, reference: str) -> bool:
    """Reload the change page until the worker has run every check (the page is server-rendered)."""
    page.goto(f"/reviews/changes/{reference}/")
    badges = page.locator("#checks tbody .verdict").all_inner_texts()
    return bool(badges) and all("waiting" not in b for b in badges)


# -- 1. the author ---------------------------------------------------------------------------


def author_publishes(page: Any, tmp_path: Path) -> str:
    """From home, through the registry: a new version of the prompt with its model pinned."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Registry").click()
    page.get_by_role("link", name=f"prompt/acme/{PROMPT}", exact=True).click()
    page.get_by_role("link", name="Publish a new version").click()
    page.get_by_label("Content").fill(NEW_TEXT)
    page.get_by_label("Impact").select_option("minor")
    page.get_by_label("Why this change").fill("A notice must never name a customer.")
    page.get_by_label("Pinned models").fill(PINNED_MODEL)
    shot(page, tmp_path, "day-publish", "form.publish-form")
    page.get_by_role("button", name="Publish").click()
    page.locator("#signature-status", has_text="verified").wait_for()
    status = page.get_by_role("status").inner_text()
    assert status.startswith(f"Published prompt/acme/{PROMPT}/1.1.0"), status
    return "1.1.0"


def author_opens_a_change(page: Any) -> str:
    page.get_by_role("link", name="Propose for promotion").click()
    page.get_by_label("Tenant").select_option("acme")
    page.get_by_label("Title").fill(TITLE)
    page.get_by_label("Risk note").fill("Touches how customers' personal data is handled.")
    page.get_by_label("Rollback plan").fill("Roll back to 1.0.0 from the change page.")
    page.get_by_label("Privacy-related").check()
    page.get_by_role("button", name="Open as draft").click()
    page.locator("#change-status").wait_for()
    return page.locator("h1 .muted").inner_text()


def author_attaches_evidence(page: Any, tmp_path: Path, version: str) -> None:
    form = page.locator("#evidence-form")
    form.get_by_label("Proposed version").select_option(label=f"prompt/acme/{PROMPT}/{version}")
    form.get_by_label("Metrics", exact=True).fill("accuracy=0.93\nsafety=0.98\nlatency_p95_ms=600")
    form.get_by_label("Test run ids").fill("ci-day-1")
    form.get_by_label("Seed").fill("1234")
    shot(page, tmp_path, "day-evidence", "#evidence-form")
    form.get_by_role("button", name="Attach the report").click()
    assert "0.93" in page.locator("#evidence").inner_text()


def author_submits(page: Any, reference: str, tmp_path: Path) -> None:
    page.get_by_role("button", name="Submit for review").click()
    assert "In review" in page.locator("#change-status").inner_text()
    assert wait_for(lambda: checks_finished(page, reference), timeout=60)
    verdicts = page.locator("#checks tbody .verdict").all_inner_texts()
    assert verdicts
    assert all("passed" in v for v in verdicts), verdicts
    shot(page, tmp_path, "day-checks", "#checks")


# -- 2 and 3. the reviewer and the privacy officer -------------------------------------------


def open_from_home(page: Any, section: str, reference: str) -> None:
    """Follow the home page's link to the change in one of its sections."""
    page.goto("/")
    item = page.locator(f"#{section} li[data-change='{reference}']")
    item.get_by_role("link").first.click()
    page.locator("#change-status").wait_for()
    assert reference in page.locator("h1").inner_text()


def sign_off_wrong_password_first(
    page: Any, username: str, comment: str, tmp_path: Path, error_shot: str | None = None
) -> None:
    """Approve with a wrong password (refused, nothing written), then with the right one."""
    reference = page.locator("h1 .muted").inner_text()
    change = selectors.change_by_reference_unscoped(reference)
    form = page.locator("#decide-form")
    form.get_by_label("Comment").fill(comment)
    form.get_by_label("Your password").fill("not-my-password")
    console_before = len(page.errors)
    form.get_by_role("button", name="Approve").click()
    error = page.locator("#decide-form [role=alert]").first
    error.wait_for()
    # The refusal's own status (403) is the only thing the console may report.
    assert set(page.errors[console_before:]) <= {REFUSED_IN_CONSOLE}, page.errors
    del page.errors[console_before:]
    assert error.is_visible()
    assert "password" in error.inner_text().lower()
    assert not Approval.objects.filter(change=change, approver__username=username).exists()
    if error_shot:
        shot(page, tmp_path, error_shot, "#decide-form")

    form = page.locator("#decide-form")
    form.get_by_label("Comment").fill(comment)
    form.get_by_label("Your password").fill(password_of(username))
    form.get_by_role("button", name="Approve").click()
    page.locator("#approvals").wait_for()
    assert username in page.locator("#approvals").inner_text()
    approval = Approval.objects.get(change=change, approver__username=username)
    assert approval.decision == Decision.APPROVE
    assert approval.comment == comment


# -- 4. the administrator --------------------------------------------------------------------


def admin_promotes(page: Any, reference: str, tmp_path: Path) -> None:
    open_from_home(page, "promote", reference)
    page.locator("#blockers-none").wait_for()
    shot(page, tmp_path, "day-promote", "#promotion")
    page.locator("#promotion").get_by_role("button", name="Promote").click()
    assert "promoted" in page.get_by_role("status").inner_text().lower()


def admin_rolls_back(page: Any, reference: str, tmp_path: Path) -> None:
    item = page.locator("article.change-item").first
    item.get_by_label(f"Why roll prompt/acme/{PROMPT} back to 1.0.0").fill(
        "Support wants the old wording back while legal reviews the new one."
    )
    shot(page, tmp_path, "day-rollback", "article.change-item form.rollback-form")
    item.get_by_role("button", name="Roll back").click()
    assert "1.0.0" in page.get_by_role("status").inner_text()
    page.goto(f"/reviews/changes/{reference}/")
    assert "Rolled back" in page.locator("#change-status").inner_text()
    assert "acme-admin" in page.locator("#rolled-back").inner_text()


# -- the day ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("worker")
def test_each_users_day_from_the_home_page(page: Any, tmp_path: Path) -> None:
    prompt = registry_selectors.artifact_by_path_unscoped(ArtifactClass.PROMPT, "acme", PROMPT)
    assert prompt.active_version is not None
    assert prompt.active_version.version == "1.0.0"

    # 1. The author publishes with a pinned model, opens a change, attaches evidence, submits.
    start_the_day(page, "acme-author")
    version = author_publishes(page, tmp_path)
    published = registry_selectors.version_by_reference_unscoped(
        f"{PROMPT}@{version}", tenant="acme"
    )
    assert published.metadata["pinned_models"] == [PINNED_MODEL]
    reference = author_opens_a_change(page)
    change = selectors.change_by_reference_unscoped(reference)
    assert change.privacy_related
    assert change.author.username == "acme-author"
    author_attaches_evidence(page, tmp_path, version)
    author_submits(page, reference, tmp_path)
    change.refresh_from_db()
    assert change.status == ChangeStatus.IN_REVIEW
    assert all(v.passes for v in selectors.check_verdicts(change, None))
    log_out(page)

    # 2. The reviewer finds it waiting on the home page and signs off.
    start_the_day(page, "acme-reviewer")
    assert page.locator(f"#waiting li[data-change='{reference}']").count() == 1
    shot(page, tmp_path, "day-home-reviewer")
    open_from_home(page, "waiting", reference)
    sign_off_wrong_password_first(
        page, "acme-reviewer", "Reads well; no names leak.", tmp_path, "day-signoff-error"
    )
    log_out(page)

    # 3. The privacy officer signs off the privacy-related template change waiting for them.
    officer_change = ChangeRequest.objects.get(tenant__slug="acme", title=OFFICER_CHANGE)
    start_the_day(page, "acme-privacy")
    assert page.locator(f"#waiting li[data-change='{reference}']").count() == 0
    shot(page, tmp_path, "day-home-privacy")
    open_from_home(page, "waiting", officer_change.reference)
    sign_off_wrong_password_first(
        page, "acme-privacy", "No personal details are echoed any more.", tmp_path
    )
    officer_change.refresh_from_db()
    assert officer_change.status == ChangeStatus.APPROVED
    log_out(page)

    # 4. The administrator signs off, promotes with confirmation, and rolls back.
    start_the_day(page, "acme-admin")
    shot(page, tmp_path, "day-home-admin")
    open_from_home(page, "waiting", reference)
    sign_off_wrong_password_first(page, "acme-admin", "Ship it.", tmp_path)
    change.refresh_from_db()
    assert change.status == ChangeStatus.APPROVED
    admin_promotes(page, reference, tmp_path)
    prompt.refresh_from_db()
    assert prompt.active_version is not None
    assert prompt.active_version.version == version
    change.refresh_from_db()
    assert change.status == ChangeStatus.PROMOTED
    admin_rolls_back(page, reference, tmp_path)
    prompt.refresh_from_db()
    assert prompt.active_version is not None
    assert prompt.active_version.version == "1.0.0"
    change.refresh_from_db()
    assert change.rolled_back_by is not None
    assert change.rolled_back_by.username == "acme-admin"
    assert page.errors == []
