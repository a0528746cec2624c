"""Passkey sign-off in headless Chromium (issue 18), with the DevTools protocol's virtual
WebAuthn authenticator standing in for the officer's laptop.

The live server is reached as http://localhost:<port> (pytest-django's default address): a
secure context for WebAuthn, and a domain the relying party id can be (``localhost``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from accounts.models import Passkey, Tenant
from reviews import selectors, services
from reviews.models import Approval
from tests.governance.test_verify import export, run_offline_verifier
from tests.integration.browser_changes import (
    author_opens_and_submits,
    checks_pass,
    publish_support_reply,
)
from tests.integration.test_browser import browser, log_in, page
from tests.integration.test_browser_a11y import _axe_script, _violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
__all__ = ["browser", "page"]  # fixtures, imported for use here

OFFICER = "acme-security"


def virtual_authenticator(page: Any) -> tuple[Any, str]:
    """A platform authenticator that verifies the user and consents at once."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


def security_officer_signs_with_passkeys() -> None:
    """acme's policy: the security officer signs off every change, with a passkey."""
    acme = Tenant.objects.get(slug="acme")
    _row, document = selectors.effective_policy(acme)
    services.approval_policy_update(
        tenant=acme,
        actor=None,
        rules={
            **document,
            "rules": [
                {
                    "name": "The security officer signs every change",
                    "when": {},
                    "require": ["security_officer"],
                },
                *document["rules"],
            ],
            "passkey_required": ["security_officer"],
        },
        reason="Security sign-off with passkeys.",
    )


def change_in_review(page: Any) -> str:
    security_officer_signs_with_passkeys()
    publish_support_reply(
        "Answer the ticket from {{ customer }} about {{ topic }}. Be brief and thank them.",
        "Thank the customer.",
    )
    reference = author_opens_and_submits(page, "Thank the customer in support replies")
    checks_pass(reference, "ci-4718")
    page.context.clear_cookies()
    return reference


def add_passkey(page: Any, name: str) -> None:
    page.goto("/account/tokens/")
    card = page.locator("#passkey-add")
    card.get_by_label("Name").fill(name)
    password = card.get_by_label("Your password")
    if password.count():  # not confirmed in the last few minutes
        password.fill(f"{OFFICER}-demo")
    card.get_by_role("button", name="Add a passkey").click()
    page.locator("tr.passkey", has_text=name).wait_for()


def test_officer_registers_a_passkey_and_signs_off_with_it(page: Any, tmp_path: Path) -> None:
    reference = change_in_review(page)
    change = selectors.change_by_reference_unscoped(reference)
    assert "security_officer" in change.passkey_requirements
    page.context.add_init_script(script=_axe_script())  # axe-core in every page, before its own
    log_in(page, OFFICER, f"{OFFICER}-demo")
    cdp, authenticator = virtual_authenticator(page)

    # Without a passkey the change page says where to register one, and offers no password.
    page.goto(f"/reviews/changes/{reference}/")
    form = page.locator("#decide-form")
    assert "register a passkey on your account page" in form.inner_text()
    assert form.get_by_label("Your password").count() == 0

    add_passkey(page, "Officer laptop")
    assert "Passkey 'Officer laptop' added" in page.get_by_role("status").first.inner_text()
    row = page.locator("tr.passkey", has_text="Officer laptop")
    assert "active" in row.inner_text()
    passkey = Passkey.objects.get(user__username=OFFICER)
    stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert len(stored["credentials"]) == 1
    row.locator("summary").click()  # the revoke form, open
    assert not _violations(page, "account page")

    page.goto(f"/reviews/changes/{reference}/")
    form = page.locator("#decide-form")
    assert form.get_by_label("Your password").count() == 0
    form.get_by_label("Sign off as").select_option("security_officer")
    form.get_by_label("Comment").fill("No secrets leave the tenant.")
    form.locator("#passkey-statement summary").click()
    assert change.binding_sha256 in form.locator("#passkey-statement").inner_text()
    assert not _violations(page, "change page, sign-off form")
    form.get_by_role("button", name="Approve with passkey").click()
    page.wait_for_url(f"**/reviews/changes/{reference}/")
    status = page.get_by_role("status").first.inner_text()
    assert "with your passkey 'Officer laptop'" in status

    slot = page.locator("tr.slot[data-requirement=security_officer]")
    assert OFFICER in slot.inner_text()
    assert "Signed with passkey 'Officer laptop'" in slot.inner_text()
    assert "the server verified the assertion" in slot.inner_text()
    approval = Approval.objects.get(change=change, approver__username=OFFICER)
    assert approval.passkey == passkey
    assert approval.comment == "No secrets leave the tenant."
    assert approval.passkey_challenge[:12] in slot.inner_text()
    counted = selectors.approval_status(change)
    assert [s.approval for s in counted.slots if s.requirement == "security_officer"] == [approval]
    assert not counted.not_counting
    assert not _violations(page, "change page, approvals")
    assert not page.errors  # no CSP violation, no script error

    # The auditor: the exported log proves Chromium's assertion offline, without Django.
    bundle = export(tmp_path)
    proof = run_offline_verifier(str(bundle))
    assert proof.returncode == 0, proof.stderr
    assert "1 passkey approval(s) verified (1 with user verification)" in proof.stdout


def test_officer_revokes_the_passkey_and_its_approval_stops_counting(page: Any) -> None:
    reference = change_in_review(page)
    change = selectors.change_by_reference_unscoped(reference)
    log_in(page, OFFICER, f"{OFFICER}-demo")
    virtual_authenticator(page)
    add_passkey(page, "Old phone")
    page.goto(f"/reviews/changes/{reference}/")
    form = page.locator("#decide-form")
    form.get_by_label("Sign off as").select_option("security_officer")
    form.get_by_role("button", name="Approve with passkey").click()
    page.locator("tr.slot[data-requirement=security_officer]", has_text="Signed with").wait_for()

    page.goto("/account/tokens/")
    row = page.locator("tr.passkey", has_text="Old phone")
    row.locator("summary").click()
    row.get_by_label("Why").fill("Phone lost")
    # Adding the passkey confirmed the password a moment ago: the revoke form does not ask again.
    assert row.get_by_label("Your password").count() == 0
    row.get_by_role("button", name="Revoke passkey").click()
    page.wait_for_url("**/account/tokens/#passkeys")
    assert "revoked" in page.get_by_role("status").first.inner_text()
    row = page.locator("tr.passkey", has_text="Old phone")
    assert "revoked" in row.inner_text()
    assert "Phone lost" in row.inner_text()
    assert Passkey.objects.get(user__username=OFFICER).revoked_at is not None

    page.goto(f"/reviews/changes/{reference}/")
    not_counting = page.locator("#not-counting")
    assert "signed with a passkey revoked on" in not_counting.inner_text()
    slot = page.locator("tr.slot[data-requirement=security_officer]")
    assert "missing" in slot.inner_text()
    counted = selectors.approval_status(change)
    assert all(s.approval is None for s in counted.slots if s.requirement == "security_officer")
    assert not page.errors


def test_a_cancelled_ceremony_is_said_on_the_page(page: Any) -> None:
    log_in(page, OFFICER, f"{OFFICER}-demo")
    virtual_authenticator(page)
    page.goto("/account/tokens/")
    card = page.locator("#passkey-add")
    card.get_by_label("Name").fill("Nope")
    card.get_by_label("Your password").fill(f"{OFFICER}-demo")
    # The person dismisses the browser's prompt (as the browser reports it).
    page.evaluate(
        "() => { navigator.credentials.create = () => Promise.reject("
        "new DOMException('cancelled', 'NotAllowedError')); }"
    )
    card.get_by_role("button", name="Add a passkey").click()
    alert = card.locator("[data-passkey-error]")
    alert.wait_for()
    assert "was not used" in alert.inner_text()
    assert not Passkey.objects.filter(user__username=OFFICER).exists()
