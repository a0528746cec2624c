"""Waivers: who may grant them, their derived states, what they let pass, and their alerts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import Tenant
from governance.kernel.errors import Conflict, DomainError, Forbidden
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.events.services import verify_database
from governance.kernel.models import Notification
from governance.sweep import governance_sweep
from reviews import selectors as review_selectors
from reviews import services as reviews
from reviews.choices import ChangeStatus, CheckKind
from reviews.waivers import selectors, services
from reviews.waivers.choices import WaiverState
from reviews.waivers.models import Waiver
from tests.reviews.conftest import (
    make_artifact,
    open_change,
    people,
    prompt,
    prompt_v1,
    prompt_v2,
)
from tests.reviews.test_services import evaluation, run_checks

__all__ = ["open_change", "people", "prompt", "prompt_v1", "prompt_v2"]  # fixtures used here

DAY = timedelta(days=1)


def _approve_and_promote(change: Any, people: dict[str, Any]) -> Any:
    for who in ("reviewer", "admin"):
        reviews.approval_decide(change=change, actor=people[who], decision="approve")
    return reviews.change_promote(change=change, actor=people["admin"])


@pytest.fixture
def failing_change(open_change: Any, people: dict[str, Any], prompt_v1: Any, prompt_v2: Any) -> Any:
    """v1 is active with safety 0.97; a change to v2 reports 0.5, so its offline evaluation fails."""
    first = open_change(prompt_v1)
    evaluation(first, prompt_v1)
    reviews.change_submit(change=first, actor=people["author"])
    run_checks(first)
    _approve_and_promote(first, people)
    worse = open_change(prompt_v2)
    evaluation(worse, prompt_v2, safety=0.5)
    reviews.change_submit(change=worse, actor=people["author"])
    assert run_checks(worse)[CheckKind.OFFLINE_EVALUATION] == "failed"
    worse.refresh_from_db()
    return worse


def grant(acme: Any, people: dict[str, Any], **kw: Any) -> Waiver:
    kw.setdefault("actor", people["admin"])
    kw.setdefault("check_kind", CheckKind.OFFLINE_EVALUATION)
    kw.setdefault("owner", people["reviewer"])
    kw.setdefault("justification", "The safety drop is a scoring artefact of the new eval set.")
    kw.setdefault("mitigation", "Human review of 5% of replies until the eval is fixed.")
    kw.setdefault("expires_at", timezone.now() + 20 * DAY)
    return services.waiver_grant(tenant=acme, **kw)


def test_a_failed_check_blocks_approval_until_a_waiver_covers_it(
    acme: Any, people: dict[str, Any], failing_change: Any, prompt: Any, prompt_v2: Any
) -> None:
    with pytest.raises(Conflict) as exc:
        reviews.approval_decide(change=failing_change, actor=people["reviewer"], decision="approve")
    assert "Offline evaluation failed" in exc.value.message
    assert exc.value.field == "decision"
    waiver = grant(
        acme, people, change=failing_change, advisory_links=["https://wiki.example/eval"]
    )
    assert waiver.reference.startswith(f"WV-{timezone.now().year}-")
    verdict = {v.kind: v for v in review_selectors.check_verdicts(failing_change)}
    assert verdict[CheckKind.OFFLINE_EVALUATION].waivers == [waiver]
    assert verdict[CheckKind.OFFLINE_EVALUATION].waived
    promoted = _approve_and_promote(failing_change, people)
    prompt.refresh_from_db()
    assert promoted.status == ChangeStatus.PROMOTED
    assert prompt.active_version == prompt_v2
    event = Event.objects.filter(kind=EventKind.CHANGE_REQUEST_PROMOTED).order_by("-seq").first()
    assert event is not None
    assert event.payload["waivers"] == [
        {
            "check": CheckKind.OFFLINE_EVALUATION,
            "waiver": waiver.reference,
            "metric": None,
            "expires_at": waiver.expires_at.isoformat(),
        }
    ]
    granted = Event.objects.get(kind=EventKind.WAIVER_GRANTED)
    assert granted.payload["change"] == failing_change.reference
    assert granted.payload["advisory_links"] == ["https://wiki.example/eval"]
    assert verify_database().ok


def test_an_expired_or_revoked_waiver_blocks_again_and_says_why(
    acme: Any, people: dict[str, Any], failing_change: Any
) -> None:
    waiver = grant(acme, people, change=failing_change)
    for who in ("reviewer", "admin"):
        reviews.approval_decide(change=failing_change, actor=people[who], decision="approve")
    later = waiver.expires_at + timedelta(seconds=1)
    assert review_selectors.promotion_blockers(failing_change, waiver.expires_at - DAY) == []
    blockers = review_selectors.promotion_blockers(failing_change, later)
    assert blockers == [
        f"check Offline evaluation failed (waiver {waiver.reference} expired on "
        f"{waiver.expires_at:%Y-%m-%d %H:%M} UTC)"
    ]
    services.waiver_revoke(waiver=waiver, actor=people["security"], reason="The eval is fine.")
    blockers = review_selectors.promotion_blockers(failing_change)
    assert len(blockers) == 1
    assert "was revoked" in blockers[0]
    with pytest.raises(Conflict):
        reviews.change_promote(change=failing_change, actor=people["admin"])
    with pytest.raises(Conflict):
        services.waiver_revoke(waiver=waiver, actor=people["admin"], reason="again")


def test_states_are_derived_from_the_dates(
    acme: Any, people: dict[str, Any], failing_change: Any
) -> None:
    waiver = grant(acme, people, change=failing_change, expires_at=timezone.now() + 10 * DAY)
    now = timezone.now()
    assert waiver.state_at(now) == WaiverState.ACTIVE
    assert waiver.state_at(now + 4 * DAY) == WaiverState.EXPIRING_SOON
    assert waiver.state_at(now + 11 * DAY) == WaiverState.EXPIRED
    annotated = selectors.waivers_by_state(Waiver.objects.all(), now + 4 * DAY).get()
    assert annotated.state == WaiverState.EXPIRING_SOON  # type: ignore[attr-defined]  # the database agrees with the model
    counts = selectors.waiver_state_counts(Tenant.objects.all(), now + 11 * DAY)
    assert counts[WaiverState.EXPIRED] == 1
    assert counts[WaiverState.ACTIVE] == 0


def test_who_may_grant_and_what_is_checked(
    acme: Any, globex: Any, people: dict[str, Any], failing_change: Any, make_user: Any
) -> None:
    with pytest.raises(Forbidden):
        grant(acme, people, change=failing_change, actor=people["reviewer"])
    outsider = make_user("outsider", globex="member")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"check_kind": "vibes"}, "check_kind"),
        ({"metric": "safety"}, "metric"),
        ({"change": None}, "scope"),
        ({"artifacts": [failing_change.items.first().artifact]}, "scope"),
        ({"owner": outsider}, "owner"),
        ({"owner": None}, "owner"),
        ({"justification": "  "}, "justification"),
        ({"mitigation": ""}, "mitigation"),
        ({"expires_at": timezone.now() - DAY}, "expires_at"),
        ({"expires_at": timezone.now() + 400 * DAY}, "expires_at"),
        ({"expires_at": "tomorrow"}, "expires_at"),
        ({"advisory_links": ["javascript:alert(1)"]}, "advisory_links"),
        ({"advisory_links": "https://one.example"}, "advisory_links"),
    ]
    for kwargs, field in cases:
        arguments = {"change": failing_change, **kwargs}
        with pytest.raises(DomainError) as exc:
            grant(acme, people, **arguments)
        assert exc.value.field == field, (kwargs, exc.value.message)
    assert not Waiver.objects.exists()
    assert not Event.objects.filter(kind=EventKind.WAIVER_GRANTED).exists()


def test_the_author_cannot_waive_their_own_change(
    acme: Any, people: dict[str, Any], failing_change: Any
) -> None:
    from accounts import services as accounts

    accounts.role_grant(user=people["author"], tenant=acme, role="administrator", actor=None)
    with pytest.raises(Forbidden) as exc:
        grant(acme, people, change=failing_change, actor=people["author"])
    assert "author" in exc.value.message


def test_a_security_check_waiver_needs_a_second_person(
    acme: Any, people: dict[str, Any], failing_change: Any
) -> None:
    artifact = failing_change.items.get().artifact  # the check passed on the change itself
    waiver = grant(acme, people, artifacts=[artifact], check_kind=CheckKind.PACK_VERIFICATION)
    assert waiver.needs_security
    assert waiver.state_at(timezone.now()) == WaiverState.PENDING
    assert Notification.objects.filter(user=people["security"], dedupe_key__contains="countersign")
    with pytest.raises(Forbidden):
        services.waiver_countersign(waiver=waiver, actor=people["reviewer"])
    signed = services.waiver_countersign(waiver=waiver, actor=people["security"])
    assert signed.countersigned_by == people["security"]
    assert signed.state_at(timezone.now()) == WaiverState.ACTIVE
    with pytest.raises(Conflict):
        services.waiver_countersign(waiver=waiver, actor=people["security"])
    assert Event.objects.filter(kind=EventKind.WAIVER_COUNTERSIGNED).count() == 1


def test_a_pending_security_waiver_does_not_count(
    acme: Any, people: dict[str, Any], failing_change: Any
) -> None:
    grant(acme, people, change=failing_change, check_kind=CheckKind.OFFLINE_EVALUATION)
    artifact = failing_change.items.get().artifact
    pending = grant(acme, people, artifacts=[artifact], check_kind=CheckKind.PACK_VERIFICATION)
    verdicts = {v.kind: v for v in review_selectors.check_verdicts(failing_change)}
    assert verdicts[CheckKind.PACK_VERIFICATION].passes  # it passed by itself
    assert pending.state_at(timezone.now()) == WaiverState.PENDING


def test_a_renewal_is_a_new_waiver_linked_to_the_old(
    acme: Any, people: dict[str, Any], failing_change: Any
) -> None:
    old = grant(acme, people, change=failing_change, expires_at=timezone.now() + 3 * DAY)
    new = services.waiver_renew(
        waiver=old, actor=people["admin"], expires_at=timezone.now() + 30 * DAY
    )
    assert new.pk != old.pk
    assert new.renews == old
    assert new.change == failing_change
    assert new.justification == old.justification
    assert new.owner == old.owner
    old.refresh_from_db()
    assert old.expires_at < new.expires_at  # the old one was not edited
    assert selectors.waiver_lineage(old) == [old, new] == selectors.waiver_lineage(new)
    renewed = Event.objects.get(kind=EventKind.WAIVER_RENEWED)
    assert renewed.payload["renews"] == old.reference
    with pytest.raises(Conflict) as exc:
        services.waiver_renew(waiver=old, actor=people["admin"], expires_at=new.expires_at)
    assert new.reference in exc.value.message
    # a renewed waiver needs no expiry alert; its renewal will get its own
    assert services.waiver_alerts_send(now=timezone.now() + DAY) == 0


def test_artifact_scoped_waivers_cover_changes_made_only_of_those_artifacts(
    acme: Any, people: dict[str, Any], failing_change: Any
) -> None:
    artifact = failing_change.items.get().artifact
    other = make_artifact(acme, "prompt", "other-prompt")
    narrow = grant(acme, people, artifacts=[other])
    assert selectors.waivers_in_scope(failing_change) == []
    wide = grant(acme, people, artifacts=[artifact, other])
    assert selectors.waivers_in_scope(failing_change) == [wide]
    assert narrow not in selectors.waivers_in_scope(failing_change)
    assert review_selectors.promotion_blockers(failing_change)[0].startswith("missing approval")


def home_reasons(user: Any) -> list[str]:
    """What the home page says blocks ``user``'s changes."""
    from governance.dashboards.home import home_board

    board = home_board(user, timezone.now())
    return [reason.text for item in board.blocked.rows for reason in item.reasons]


def test_a_gate_waiver_names_one_metric(
    acme: Any, people: dict[str, Any], failing_change: Any
) -> None:
    from registry.models import ArtifactClass

    reviews.change_gate_set(
        tenant=acme,
        artifact_class=ArtifactClass.objects.get(slug="prompt"),
        gates=[{"metric": "safety", "min": 0.9}, {"metric": "latency_p95_ms", "max": 300}],
        actor=people["admin"],
    )
    reviews.check_rerun(change=failing_change, kind=CheckKind.CHANGE_GATES, actor=people["admin"])
    run_checks(failing_change)  # safety 0.5 and latency 420 both miss their gates
    grant(acme, people, change=failing_change)  # the offline evaluation is waived as a whole
    grant(acme, people, change=failing_change, check_kind=CheckKind.CHANGE_GATES, metric="safety")
    verdicts = {v.kind: v for v in review_selectors.check_verdicts(failing_change)}
    gates = verdicts[CheckKind.CHANGE_GATES]
    assert not gates.passes
    assert gates.blocked_by == (
        "Change gates failed (waivers cover only the safety gate; latency_p95_ms is not waived)"
    )
    partly = (
        "Change gates failed (waivers cover only some of its gates): attach evaluation evidence"
    )
    assert partly in home_reasons(people["author"])  # the home page judges it the same way
    grant(
        acme,
        people,
        change=failing_change,
        check_kind=CheckKind.CHANGE_GATES,
        metric="latency_p95_ms",
    )
    verdicts = {v.kind: v for v in review_selectors.check_verdicts(failing_change)}
    gates = verdicts[CheckKind.CHANGE_GATES]
    assert gates.passes
    assert [w.metric for w in gates.waivers] == ["latency_p95_ms", "safety"]
    assert all(v.passes for v in verdicts.values())
    assert not any(r.startswith("Change gates") for r in home_reasons(people["author"]))


def test_alerts_go_to_owner_and_admins_once_per_waiver(
    acme: Any, people: dict[str, Any], failing_change: Any
) -> None:
    waiver = grant(acme, people, change=failing_change, expires_at=timezone.now() + 20 * DAY)
    now = timezone.now()
    assert services.waiver_alerts_send(now=now) == 0  # 20 days out: nothing yet
    soon = now + 14 * DAY  # 6 days before expiry
    first = services.waiver_alerts_send(now=soon)
    recipients = set(
        Notification.objects.filter(dedupe_key=f"waiver:{waiver.pk}:expiring").values_list(
            "user__username", flat=True
        )
    )
    assert recipients == {"reviewer", "admin", "multi"}  # the owner and the administrators
    assert first == 3
    assert services.waiver_alerts_send(now=soon) == 0  # twice: nothing new
    assert services.waiver_alerts_send(now=soon + DAY) == 0  # late: nothing new
    after = waiver.expires_at + DAY
    assert services.waiver_alerts_send(now=after) == 3
    expired = Notification.objects.filter(dedupe_key=f"waiver:{waiver.pk}:expired").first()
    assert expired is not None
    assert "blocks again" in expired.title
    assert failing_change.reference in expired.body
    assert governance_sweep(now=after)["waiver_alerts"] == 0


def test_renewing_or_countersigning_resolves_what_was_asked(
    acme: Any, people: dict[str, Any], failing_change: Any
) -> None:
    waiver = grant(acme, people, change=failing_change, expires_at=timezone.now() + 5 * DAY)
    assert services.waiver_alerts_send(now=timezone.now()) == 3
    subject = services.expiry_subject(waiver)
    (ask,) = Notification.objects.filter(user=people["admin"], subject=subject)
    assert ask.title.startswith(f"Renew {waiver.reference} or let it lapse: it expires on ")
    renewal = services.waiver_renew(
        waiver=waiver, actor=people["admin"], expires_at=timezone.now() + 30 * DAY
    )
    rows = Notification.objects.filter(subject=subject)
    assert rows.count() == 3
    assert set(rows.values_list("resolution", flat=True)) == {f"Renewed as {renewal.reference}."}
    assert not rows.filter(resolved_at__isnull=True).exists()

    artifact = failing_change.items.get().artifact
    signed = grant(acme, people, artifacts=[artifact], check_kind=CheckKind.PACK_VERIFICATION)
    (ask,) = Notification.objects.filter(subject=services.countersign_subject(signed))
    assert ask.title == f"Countersign {signed.reference}: it waives a security check"
    services.waiver_countersign(waiver=signed, actor=people["security"])
    ask.refresh_from_db()
    assert ask.resolved_at is not None
    assert ask.resolution == "Countersigned by security."


def test_revoked_waivers_are_not_alerted(
    acme: Any, people: dict[str, Any], failing_change: Any
) -> None:
    waiver = grant(acme, people, change=failing_change, expires_at=timezone.now() + 2 * DAY)
    services.waiver_revoke(waiver=waiver, actor=people["admin"], reason="not needed")
    assert services.waiver_alerts_send(now=timezone.now()) == 0


def test_a_closed_change_cannot_be_waived(
    acme: Any, people: dict[str, Any], failing_change: Any
) -> None:
    reviews.change_withdraw(change=failing_change, actor=people["author"], reason="gone")
    with pytest.raises(Conflict) as exc:
        grant(acme, people, change=failing_change)
    assert exc.value.field == "change"


def test_prometheus_counts_waivers_by_state(
    acme: Any, people: dict[str, Any], failing_change: Any, settings: Any, client: Any
) -> None:
    grant(acme, people, change=failing_change, expires_at=timezone.now() + 3 * DAY)
    grant(acme, people, change=failing_change, expires_at=timezone.now() + 30 * DAY)
    revoked = grant(acme, people, change=failing_change)
    services.waiver_revoke(waiver=revoked, actor=people["admin"], reason="done")
    settings.METRICS_PUBLIC = True
    text = client.get("/metrics").content.decode()
    assert 'governance_waivers{state="expiring_soon"} 1.0' in text
    assert 'governance_waivers{state="active"} 1.0' in text
    assert 'governance_waivers{state="revoked"} 1.0' in text


def test_a_repeat_sweep_costs_the_same_however_many_waivers_were_alerted(
    acme: Any, people: dict[str, Any], failing_change: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def alerted_sweep_queries(n: int) -> int:
        for _ in range(n):
            grant(acme, people, change=failing_change, expires_at=timezone.now() + 3 * DAY)
        assert services.waiver_alerts_send(now=timezone.now()) == 3 * n
        with CaptureQueriesContext(connection) as queries:
            assert services.waiver_alerts_send(now=timezone.now()) == 0
        return len(queries)

    assert alerted_sweep_queries(2) == alerted_sweep_queries(6)


def test_a_change_scoped_waiver_covers_the_revision_it_was_granted_for(
    acme: Any, people: dict[str, Any], failing_change: Any
) -> None:
    waiver = grant(acme, people, change=failing_change)
    assert waiver.change_revision == failing_change.revision == 1
    assert Event.objects.get(kind=EventKind.WAIVER_GRANTED).payload["change_revision"] == 1
    revised = reviews.change_revise(
        change=failing_change, actor=people["author"], reason="Tighter wording."
    )
    reviews.change_submit(change=revised, actor=people["author"])
    run_checks(revised)  # the evaluation fails again on revision 2
    revised.refresh_from_db()
    verdicts = {v.kind: v for v in review_selectors.check_verdicts(revised)}
    offline = verdicts[CheckKind.OFFLINE_EVALUATION]
    assert not offline.passes
    assert offline.lapsed == [waiver]
    assert offline.blocked_by == (
        f"Offline evaluation failed (waiver {waiver.reference} was granted for revision 1; "
        "the change was revised since, so renew it)"
    )
    renewal = services.waiver_renew(
        waiver=waiver, actor=people["admin"], expires_at=timezone.now() + 10 * DAY
    )
    assert renewal.change_revision == 2
    verdicts = {v.kind: v for v in review_selectors.check_verdicts(revised)}
    assert verdicts[CheckKind.OFFLINE_EVALUATION].waivers == [renewal]


def test_a_check_that_does_not_apply_or_has_passed_cannot_be_waived(
    acme: Any, people: dict[str, Any], failing_change: Any
) -> None:
    from registry.models import ArtifactClass

    artifact = failing_change.items.get().artifact
    with pytest.raises(DomainError) as exc:
        grant(acme, people, change=failing_change, check_kind=CheckKind.RULES_LINT)
    assert exc.value.field == "check_kind"
    assert exc.value.message.startswith(
        f"Rules lint does not apply to {failing_change.reference} (not required;"
    )
    with pytest.raises(DomainError) as exc:
        grant(acme, people, artifacts=[artifact], check_kind=CheckKind.RULES_SIMULATION)
    assert exc.value.field == "check_kind"
    assert "does not apply to prompt/acme/" in exc.value.message
    with pytest.raises(Conflict) as exc:
        grant(acme, people, change=failing_change, check_kind=CheckKind.PACK_VERIFICATION)
    assert exc.value.field == "check_kind"
    assert exc.value.message == (
        f"Pack verification has passed on {failing_change.reference} "
        f"(revision {failing_change.revision}); there is nothing to waive."
    )
    # One gate fails (safety 0.5 < 0.9), the other passes (latency 420 <= 500).
    reviews.change_gate_set(
        tenant=acme,
        artifact_class=ArtifactClass.objects.get(slug="prompt"),
        gates=[{"metric": "safety", "min": 0.9}, {"metric": "latency_p95_ms", "max": 500}],
        actor=people["admin"],
    )
    reviews.check_rerun(change=failing_change, kind=CheckKind.CHANGE_GATES, actor=people["admin"])
    run_checks(failing_change)
    with pytest.raises(Conflict) as exc:
        grant(
            acme,
            people,
            change=failing_change,
            check_kind=CheckKind.CHANGE_GATES,
            metric="latency_p95_ms",
        )
    assert exc.value.field == "metric"
    assert "The latency_p95_ms gate has passed" in exc.value.message
    assert "failing: safety" in exc.value.message
    assert Waiver.objects.count() == 0
    assert not Event.objects.filter(kind=EventKind.WAIVER_GRANTED).exists()
    # What failed and applies can still be waived.
    grant(acme, people, change=failing_change, check_kind=CheckKind.CHANGE_GATES, metric="safety")
    grant(acme, people, change=failing_change)  # the offline evaluation, which failed
    assert Waiver.objects.count() == 2
