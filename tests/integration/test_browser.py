"""What a person does in the browser, in headless Chromium driven by Playwright."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import chromium_path
from tests.integration import demo_snapshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = chromium_path()
    if path is None:
        pytest.skip("needs Chromium: apt-get install chromium (make test does this)")
    pytest.importorskip("playwright.sync_api", reason="needs playwright (make test installs it)")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the
    # tests make themselves (database setup, seeding) are safe here. Only for
    # this module: other tests run `check --deploy`, which forbids the flag.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        yield from _launch(path)
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def _launch(path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=path,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, live_server: Any) -> Iterator[Any]:
    demo_snapshot.seed_demo()  # seeded once, copied back for the next tests
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.errors = errors
    yield page
    context.close()


def log_in(page: Any, username: str, password: str) -> None:
    page.goto("/")
    assert page.url.endswith("/login/?next=/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_reviewer_logs_in_sees_tenant_and_role_and_logs_out(page):
    log_in(page, "acme-reviewer", "acme-reviewer-demo")
    page.get_by_role("heading", name="Welcome, acme-reviewer").wait_for()
    row = page.get_by_role("row").filter(has_text="acme")
    assert row.get_by_role("link", name="acme", exact=True).is_visible()
    assert row.locator('[data-role="reviewer"]').inner_text() == "Reviewer"  # the label
    # What needs them: every section of the home page is there, each with its count.
    for heading in ("Waiting for your review", "Your changes that are blocked", "Post-mortems due"):
        page.get_by_role("heading", name=re.compile(rf"^{heading}")).wait_for()
    assert page.get_by_role("row").filter(has_text="globex").count() == 0
    nav = page.get_by_role("navigation", name="Main")
    assert [a.inner_text() for a in nav.get_by_role("link").all()] == [
        "Registry",
        "Reviews",
        "Rollouts",
        "Governance",
        "Waivers",
    ]

    page.get_by_role("button", name="Log out").click()
    page.get_by_role("heading", name="Log in").wait_for()
    page.goto("/")
    assert "/login/" in page.url
    assert page.errors == []  # no CSP violations or script errors


def test_wrong_password_is_explained(page):
    log_in(page, "acme-reviewer", "not-it")
    assert (
        page.get_by_role("alert")
        .inner_text()
        .startswith("Please enter a correct username and password")
    )


def test_admin_grants_a_role_in_the_browser(page):
    log_in(page, "acme-admin", "acme-admin-demo")
    page.get_by_role("link", name="acme", exact=True).click()
    page.get_by_label("Username", exact=True).fill("acme-author")
    page.get_by_label("Role", exact=True).select_option("reviewer")
    page.get_by_label("Reason").fill("joins the review rota")
    page.get_by_role("button", name="Grant").click()
    assert page.get_by_role("status").inner_text() == "Granted Reviewer to acme-author in acme."
    members = page.locator("section", has=page.get_by_role("heading", name="Members"))
    assert (
        members.get_by_role("row").filter(has_text="acme-author").locator(".badge").inner_text()
        == "Reviewer"
    )


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (375, 740)])
def test_pages_fit_laptop_and_phone_widths(page, width, height):
    page.set_viewport_size({"width": width, "height": height})
    from governance.kernel.events.models import Event

    log_in(page, "acme-admin", "acme-admin-demo")
    acme_event = Event.objects.filter(tenant__slug="acme").order_by("seq").first()
    pages = [
        "/",
        "/tenants/acme/",
        "/account/tokens/",
        "/governance/",
        "/governance/events/",
    ]
    for path in [*pages, acme_event.get_absolute_url(), "/governance/metrics/"]:
        page.goto(path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at {width}px"
    assert page.errors == []


@pytest.fixture
def broker() -> Iterator[str]:
    from tests.integration.workers import redis_broker

    yield from redis_broker()


def test_administrator_verifies_the_log_and_reads_an_event(page, broker, tmp_path):
    from tests.integration.workers import start_worker, stop

    worker = start_worker(tmp_path)
    try:
        log_in(page, "acme-admin", "acme-admin-demo")
        page.get_by_role("link", name="Governance", exact=True).click()
        page.get_by_role("button", name="Verify the log").click()
        page.get_by_role("heading", name="Log verification").wait_for()
        # The page refreshes itself until the worker has finished.
        page.locator("#run-status", has_text="passed").wait_for(timeout=45_000)
        assert page.locator("#run-result").inner_text().startswith("OK: ")
        assert page.locator("#run-result").inner_text().endswith(" events verified")
    finally:
        stop(worker)
    page.goto("/governance/events/")
    first = page.get_by_role("row").nth(1)
    first.get_by_role("link").first.click()
    assert page.locator("#verification-status").inner_text() == "verified"
    assert page.errors == []


def test_author_publishes_a_prompt_version_and_reads_the_diff(page):
    log_in(page, "acme-author", "acme-author-demo")
    page.get_by_role("link", name="Registry", exact=True).click()
    page.get_by_role("link", name="prompt/acme/qualify-lead").click()
    page.get_by_role("link", name="Publish a new version").click()
    content = page.get_by_label("Content")
    text = content.input_value()
    assert "{{ region }}" in text  # edit the latest version as a new one
    content.fill(text.replace("Region: {{ region }}\n", "").replace(" and region", ""))
    page.get_by_label("Input variables").fill("")
    page.get_by_label("Impact").select_option("major")
    page.get_by_label("Why this change").fill("Region now comes from the account.")
    page.get_by_role("button", name="Publish").click()
    page.locator("#signature-status", has_text="verified").wait_for()
    assert (
        page.get_by_role("status")
        .inner_text()
        .startswith("Published prompt/acme/qualify-lead/3.0.0")
    )
    page.get_by_role("link", name="Compare with 2.0.1").click()
    changes = page.locator("#contract-changes")
    assert "region" in changes.inner_text()
    assert "major" in changes.inner_text()
    assert page.locator("table.diff del").count() >= 1
    assert page.errors == []
