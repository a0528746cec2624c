"""Every page passes axe-core (no serious or critical violation) and fits a phone, for each demo user.

axe-core comes from the ``axe-playwright-python`` package (its bundled ``axe.min.js``, MPL-2.0),
injected into the page from the local file: Chromium runs offline. Each demo user signs in once
and walks every HTML page of the app (the URL configuration read with ``get_resolver()``, so a new
route fails the test until it is given demo values or a reason to skip it), with the real ids of
the demo data in that user's tenant. Each page is checked at 1280 px and at 390 px; at 390 px the
page must also not scroll sideways. A failure lists every violation: page, width, rule, selectors.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from governance.demo import DEMO_USERS, demo_password
from tests.integration import demo_snapshot
from tests.integration.test_browser import browser, log_in

__all__ = ["browser"]  # the fixture, imported for use here

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

#: axe-core rule tags checked: WCAG 2.0/2.1 A and AA, and Deque's best practices.
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
FAILING_IMPACTS = {"serious", "critical"}
WIDTHS = [(1280, 800), (390, 844)]

#: Routes that are not pages a person reads, each with the reason.
NOT_PAGES = {
    "healthz": "liveness probe (JSON)",
    "favicon.ico": "the icon",
    "readyz": "readiness probe (JSON)",
    "metrics": "Prometheus exposition (text)",
    "logout/": "POST only: signs out",
    "login/": "checked before signing in",
    "api/": "the REST API (JSON); its docs pages are a vendored viewer",
    "admin/": "Django's admin, staff only, styled by Django",
    "ofrep/": "OpenFeature evaluation (JSON)",
}
#: Route suffixes (by URL name) that take POST only or answer JSON.
NOT_PAGE_NAMES = {
    "artifact-owner": "POST only",
    "version-deprecate": "POST only",
    "version-retire": "POST only",
    "change-record": "JSON",
    "notification-open": "marks a notification read and redirects to its subject (a page here)",
    "change-action": "POST only",
    "rollback": "POST only",
    "deactivate": "POST only",
    "rollout-manifest": "JSON",
    "rollout-dashboard": "an htmx fragment polled into the rollout page, checked there",
    "rollout-action": "POST only",
    "slot-override": "POST only",
    "application-edit": "POST only (the form is on the application page)",
    "slot-edit": "POST only (the form is on the slot page)",
    "slot-new": "POST only (the form is on the application page)",
    "verify-start": "POST only",
    "waiver-countersign": "POST only",
    "tenant-grant": "POST only",
    "tenant-revoke": "POST only",
    "tenant-service-token-create": "POST only",
    "tenant-service-token-revoke": "POST only",
    "token-revoke": "POST only",
    "passkey-revoke": "POST only",
    "passkey-register-begin": "JSON for the account page's script (POST only)",
    "passkey-register-finish": "JSON for the account page's script (POST only)",
    "change-passkey-challenge": "JSON for the change page's script (POST only)",
}


def _routes() -> Iterator[tuple[str, str]]:
    """(route text, URL name) of every URL pattern, resolvers walked recursively."""

    def walk(resolver: URLResolver, prefix: str) -> Iterator[tuple[str, str]]:
        for entry in resolver.url_patterns:
            text = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                yield from walk(entry, text)
            elif isinstance(entry, URLPattern):
                yield text, entry.name or ""

    yield from walk(get_resolver(), "")


def _values(username: str) -> dict[str, str]:
    """Path parameters filled from the demo data of the user's tenant (acme when it has none)."""
    from accounts.models import Tenant, User
    from governance.kernel.events.models import Event
    from governance.kernel.events.services.verification import verification_start
    from registry.models import Version
    from reviews.models import ChangeRequest
    from reviews.waivers.models import Waiver
    from rollouts.models import Application, Rollout

    slug = username.split("-")[0]
    tenant = Tenant.objects.filter(slug=slug).first() or Tenant.objects.get(slug="acme")

    def mine(queryset: Any) -> Any:
        return queryset.filter(tenant=tenant).first() or queryset.first()

    # A version with one before it, so that its diff page has something to compare.
    versions = Version.objects.order_by("-created_at").select_related(
        "artifact__artifact_class", "artifact__tenant"
    )
    version = next(
        v
        for v in [*versions.filter(artifact__tenant=tenant), *versions]
        if v.artifact.versions.count() > 1
    )
    change = mine(ChangeRequest.objects.order_by("status", "-created_at"))
    application = mine(Application.objects.order_by("slug"))
    return {
        "cls": version.artifact.artifact_class.slug,
        "tenant": version.artifact.tenant.slug,
        "slug": version.artifact.slug,
        "version": version.version,
        "reference": change.reference,
        "waiver": mine(Waiver.objects.order_by("year", "number")).reference,
        "number": str(mine(Rollout.objects.order_by("number")).number),
        "application": application.slug,
        "name": application.slots.order_by("name").first().name,
        "seq": str(mine(Event.objects.order_by("seq")).seq),
        "run_id": str(verification_start(actor=User.objects.get(username="acme-admin")).pk),
        "tenant_slug": tenant.slug,
    }


def _pages(values: dict[str, str]) -> list[str]:
    """Every page's URL, with the demo values; fails on a route this module does not know."""
    urls = []
    unknown = []
    for route, name in _routes():
        if any(route.startswith(prefix) for prefix in NOT_PAGES) or name in NOT_PAGE_NAMES:
            continue
        params = dict(values)
        if name.startswith(("waiver-",)):
            params["reference"] = values["waiver"]
        if route.startswith(("rollouts/applications/",)):
            params["slug"] = values["application"]
        if route.startswith("tenants/"):
            params["slug"] = values["tenant_slug"]
        if route.startswith("reviews/policy/"):
            params["tenant"] = values["tenant_slug"]
        names = re.findall(r"<(?:\w+:)?(\w+)>", route)
        if any(n not in params for n in names):
            unknown.append(route)
            continue
        urls.append("/" + re.sub(r"<(?:\w+:)?(\w+)>", "{\\1}", route).format(**params))
    assert not unknown, f"routes with no demo value nor reason to skip: {unknown}"
    # Pages that only a query string reaches, and the error pages.
    urls += ["/registry/?q=support", "/no-such-page/", f"/tenants/{values['tenant_slug']}x/"]
    return urls


def _axe_script() -> str:
    """axe-core as shipped inside the axe-playwright-python package (only the file is used)."""
    return resources.files("axe_playwright_python").joinpath("axe.min.js").read_text()


def _violations(page: Any, where: str) -> list[str]:
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags},"
        " resultTypes: ['violations']})",
        TAGS,
    )
    found = []
    for violation in result["violations"]:
        if violation["impact"] not in FAILING_IMPACTS:
            continue
        targets = ", ".join(" ".join(node["target"]) for node in violation["nodes"][:5])
        found.append(f"{where}: {violation['impact']} {violation['id']} at {targets}")
    return found


@pytest.fixture
def demo(live_server: Any) -> str:
    demo_snapshot.seed_demo()  # seeded once, copied back for the next tests
    return str(live_server.url)


def _walk(
    chromium: Any, base_url: str, username: str, pages: list[str], axe_pages: set[str]
) -> list[str]:
    """Sign in, then visit ``pages`` at both widths; axe runs on ``axe_pages`` (at both)."""
    context = chromium.new_context(base_url=base_url)
    # axe-core is evaluated in every document before the page's own scripts (local file, CSP
    # does not apply to scripts injected through the DevTools protocol).
    context.add_init_script(script=_axe_script())
    page = context.new_page()
    problems: list[str] = []
    try:
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto("/login/")
        problems += _violations(page, "/login/ at 390px")
        log_in(page, username, demo_password(username))
        page.wait_for_url(re.compile(r"/$"))
        for path in pages:
            # Pages without axe are loaded once, at phone width (the sideways-scroll check).
            widths = WIDTHS if path in axe_pages else WIDTHS[-1:]
            for n, (width, height) in enumerate(widths):
                page.set_viewport_size({"width": width, "height": height})
                if n == 0:
                    response = page.goto(path)
                    if response is None or response.status >= 500:
                        problems.append(f"{path}: answered {response and response.status}")
                where = f"{path} at {width}px"
                if path in axe_pages:
                    problems += _violations(page, where)
                if width < 768:
                    overflow = page.evaluate(
                        "document.documentElement.scrollWidth - window.innerWidth"
                    )
                    if overflow > 0:
                        problems.append(f"{where}: scrolls sideways by {overflow}px")
    finally:
        context.close()
    return problems


#: The user who holds every role of acme walks every page with axe; the other users walk every
#: page for the phone-width check and run axe on the pages that change with the role. One demo
#: user per kind of person (an axe run costs about a second): the other demo users hold the same
#: roles in another tenant (acme-security is like acme-privacy, globex-reviewer and
#: platform-reviewer like acme-reviewer, platform-author like acme-author).
FULL_AXE_USER = "acme-admin"
USERS = [
    "platform-admin",
    "acme-admin",
    "acme-reviewer",
    "acme-privacy",
    "acme-author",
    "globex-admin",
]
ROLE_PAGES = [
    "/",
    "/reviews/changes/{reference}/",
    "/rollouts/RO-{number}/",
    "/governance/",
    "/governance/waivers/{waiver}/",
    "/tenants/{tenant_slug}/",
    "/reviews/notifications/",
    "/registry/{cls}/{tenant}/{slug}/",
]


@pytest.mark.parametrize("username", USERS)
def test_every_page_passes_axe_and_fits_a_phone(browser, demo, username):
    values = _values(username)
    pages = _pages(values)
    if username == FULL_AXE_USER:
        axe_pages = set(pages)
    else:
        axe_pages = {p.format(**values) for p in ROLE_PAGES}
    assert username in {name for name, _, _ in DEMO_USERS}
    problems = _walk(browser, demo, username, pages, axe_pages)
    assert not problems, f"{len(problems)} problems for {username}:\n" + "\n".join(problems)


def test_keyboard_first_tab_is_a_visible_skip_link_and_focus_is_outlined(browser, demo):
    context = browser.new_context(base_url=demo)
    page = context.new_page()
    try:
        log_in(page, "acme-reviewer", demo_password("acme-reviewer"))
        page.wait_for_url(re.compile(r"/$"))
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => { const e = document.activeElement, r = e.getBoundingClientRect(),"
            " s = getComputedStyle(e); return {text: e.textContent.trim(), left: r.left,"
            " outline: s.outlineStyle, width: s.outlineWidth}; }"
        )
        assert focused["text"] == "Skip to content"
        assert focused["left"] >= 0  # moved on screen when focused
        assert (focused["outline"], focused["width"]) == ("solid", "3px")
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
        page.keyboard.press("Tab")  # the next stop after <main> is inside it, outlined too
        style = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert style == "solid"
    finally:
        context.close()
