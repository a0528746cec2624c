"""Each user's day in the browser, from the home page to done, with nothing but the browser.

After ``seed_demo`` nothing here writes through the ORM or the API: the author publishes a
prompt with a pinned model, opens a change, attaches evaluation evidence on the change page
and submits it; a real Celery worker runs the checks, as in production; the reviewer and the
officers (privacy, security) sign off from their home pages (a wrong password first); the
administrator opens the request to review from Notifications, signs off, then promotes and
rolls back, each after reading what it will change and giving the password; every request
to review ends read and resolved. The ORM is only read, to check that what the pages say is
what was stored.

With ``DOCS_SCREENSHOTS=1`` the screenshots land in ``docs/img/day-*.png`` (used by
docs/guide.md, "A day in the browser"); otherwise in the test's temporary folder.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from governance.kernel.models import Notification
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
OFFICER_CHANGE = "Stop echoing personal details"  # seeded: waits on the privacy officer
SECURITY_CHANGE = "Hotfix: stop quoting prices"  # seeded: waits on the security officer too


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
    page.locator("#evidence table", has_text="0.93").wait_for()  # the new page, not the old


def author_submits(page: Any, reference: str, tmp_path: Path) -> None:
    page.get_by_role("button", name="Submit for review").click()
    page.locator("#change-status", has_text="In review").wait_for()
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
    assert page.errors[console_before:] == []  # a redirect to the change, no error status
    assert error.is_visible()
    assert "password" in error.inner_text().lower()
    assert not Approval.objects.filter(change=change, approver__username=username).exists()
    error_where_the_user_looks(page, error, change)
    if error_shot:
        shot(page, tmp_path, error_shot, "#decide-form")
    reloaded = page.reload()  # the address is the change's: reloading shows it, not a blank page
    assert reloaded is not None
    assert reloaded.status == 200
    assert reference in page.locator("h1").inner_text()

    form = page.locator("#decide-form")
    form.get_by_label("Comment").fill(comment)
    form.get_by_label("Your password").fill(password_of(username))
    form.get_by_role("button", name="Approve").click()
    page.locator("#approvals tr.slot", has_text=username).first.wait_for()
    approval = Approval.objects.get(change=change, approver__username=username)
    assert approval.decision == Decision.APPROVE
    assert approval.comment == comment


def error_where_the_user_looks(page: Any, error: Any, change: ChangeRequest) -> None:
    """The refusal keeps the change's address (post/redirect/get); its error summary is at the
    top of the form, focused (announced) and in view without scrolling."""
    assert urlsplit(page.url).path == change.get_absolute_url()
    page.wait_for_function(  # errors.js focuses the summary once the page has loaded
        "document.activeElement && document.activeElement.matches('#decide-form [data-error-summary]')",
        timeout=5_000,
    )
    assert error.evaluate(
        "el => { const r = el.getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight; }"
    )


# -- 4. the administrator --------------------------------------------------------------------


def open_notification(page: Any, title_start: str) -> None:
    """From the header's Notifications, follow the one whose title starts with ``title_start``."""
    page.get_by_role("link", name=re.compile(r"^Notifications")).click()
    page.get_by_role("heading", name="Notifications", level=1).wait_for()
    page.locator(".notification-title a", has_text=title_start).first.click()
    page.locator("#change-status").wait_for()


def admin_promotes(page: Any, change: ChangeRequest, tmp_path: Path) -> None:
    """From "Ready for you to promote": the form says what will change and asks the password."""
    open_from_home(page, "promote", change.reference)
    page.locator("#blockers-none").wait_for()
    form = page.locator("#promote-form")
    assert form.locator("#promotion-summary").inner_text() == (
        f"{change.reference} makes prompt/acme/{PROMPT} 1.1.0 active, replacing 1.0.0."
    )
    form.get_by_label("Your password").fill(password_of("acme-admin"))  # a new session
    shot(page, tmp_path, "day-promote", "#promotion")
    form.get_by_role("button", name="Promote").click()
    page.get_by_role("status").filter(has_text=re.compile("promoted", re.IGNORECASE)).wait_for()


def admin_rolls_back(page: Any, change: ChangeRequest, tmp_path: Path) -> None:
    """From the change page: the form says what the rollback restores and asks the password."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Reviews").click()
    page.get_by_role("link", name="All changes").click()
    page.get_by_role("link", name=change.reference, exact=True).click()
    form = page.locator("article.change-item form.rollback-form").first
    form.get_by_label(f"Why roll prompt/acme/{PROMPT} back to 1.0.0").fill(
        "Support wants the old wording back while legal reviews the new one."
    )
    assert form.locator(".rollback-summary").inner_text() == (
        f"Rollback restores prompt/acme/{PROMPT} 1.0.0 (replacing 1.1.0); "
        f"{change.reference} reads rolled back."
    )
    form.get_by_label("Your password").fill(password_of("acme-admin"))  # a new session
    shot(page, tmp_path, "day-rollback", "article.change-item form.rollback-form")
    form.get_by_role("button", name="Roll back").click()
    page.get_by_role("status").filter(has_text="1.0.0").wait_for()
    page.goto(change.get_absolute_url())
    assert "Rolled back" in page.locator("#change-status").inner_text()
    assert "acme-admin" in page.locator("#rolled-back").inner_text()


# -- 5. notifications ------------------------------------------------------------------------


def review_requests(change: ChangeRequest, username: str) -> list[Notification]:
    """The "Review CR-… as …" notifications ``username`` got about ``change``."""
    return list(
        Notification.objects.filter(user__username=username, subject=f"change:{change.pk}:review")
    )


def read_and_resolved(page: Any, change: ChangeRequest, username: str, tmp_path: Path) -> None:
    """The person's request to review ended read and resolved: on their page and stored."""
    start_the_day(page, username)
    page.get_by_role("link", name=re.compile(r"^Notifications")).click()
    page.get_by_role("heading", name="Notifications", level=1).wait_for()
    item = page.locator("ul.notifications li", has_text=f"Review {change.reference} as")
    item.first.wait_for()
    assert item.count() == 1
    assert "resolved" in item.locator(".badge").inner_text()
    assert "new" not in item.locator(".badge").all_inner_texts()
    if username == "acme-reviewer":
        shot(page, tmp_path, "day-notifications")
    notes = review_requests(change, username)
    assert len(notes) == 1
    assert notes[0].read_at is not None
    assert notes[0].resolved_at is not None
    log_out(page)


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

    # 3. The privacy officer signs off the privacy-related template change waiting for them...
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

    # ... and the security officer the emergency change waiting for them (and its owner).
    hotfix = ChangeRequest.objects.get(tenant__slug="acme", title=SECURITY_CHANGE)
    start_the_day(page, "acme-security")
    open_from_home(page, "waiting", hotfix.reference)
    sign_off_wrong_password_first(
        page, "acme-security", "No data leaves for a new place.", tmp_path
    )
    log_out(page)

    # 4. The administrator opens the request to review from Notifications (marked read),
    # signs off; later, in a new session, promotes; later still, rolls back (each confirmed).
    start_the_day(page, "acme-admin")
    shot(page, tmp_path, "day-home-admin")
    open_notification(page, f"Review {reference} as administrator")
    (request,) = review_requests(change, "acme-admin")
    assert request.read_at is not None
    assert request.resolved_at is None
    sign_off_wrong_password_first(page, "acme-admin", "Ship it.", tmp_path)
    change.refresh_from_db()
    assert change.status == ChangeStatus.APPROVED
    log_out(page)

    start_the_day(page, "acme-admin")
    admin_promotes(page, change, tmp_path)
    prompt.refresh_from_db()
    assert prompt.active_version is not None
    assert prompt.active_version.version == version
    change.refresh_from_db()
    assert change.status == ChangeStatus.PROMOTED
    log_out(page)

    start_the_day(page, "acme-admin")  # later that day: support asks for the old wording
    admin_rolls_back(page, change, tmp_path)
    prompt.refresh_from_db()
    assert prompt.active_version is not None
    assert prompt.active_version.version == "1.0.0"
    change.refresh_from_db()
    assert change.rolled_back_by is not None
    assert change.rolled_back_by.username == "acme-admin"
    log_out(page)

    # 5. Every request to review ended read and resolved, on the page and in the database.
    read_and_resolved(page, change, "acme-reviewer", tmp_path)
    read_and_resolved(page, change, "acme-admin", tmp_path)
    read_and_resolved(page, officer_change, "acme-privacy", tmp_path)
    read_and_resolved(page, hotfix, "acme-security", tmp_path)
    assert not Notification.objects.filter(
        subject__startswith=f"change:{change.pk}:", resolved_at__isnull=True
    ).exists()
    assert page.errors == []
