"""Change requests in every state: promoted, rejected, failing a check, and waiting on each role."""

from __future__ import annotations

from typing import Any

from accounts.models import Tenant, User
from governance.demo.common import (
    PINS,
    PROMPT_RISK,
    demo_artifact,
    demo_prompt,
    deployment_ready,
    evaluate,
    evidence,
    pull_request,
    submitted,
)
from registry import selectors as registry_selectors
from registry import services as registry
from registry.choices import ArtifactClass
from reviews import services as reviews
from reviews.models import ChangeRequest


def seed_reviews(tenants: dict[str, Tenant]) -> None:
    """Change requests in every state: promoted, rejected, failing a check, and waiting on each role."""

    acme = tenants["acme"]
    if ChangeRequest.objects.filter(tenant=acme).exists():
        return
    users = {u.username: u for u in User.objects.filter(username__startswith="acme-")}
    author, admin = users["acme-author"], users["acme-admin"]
    reviewer, privacy, security = (
        users["acme-reviewer"],
        users["acme-privacy"],
        users["acme-security"],
    )

    def ref(text: str) -> Any:
        return registry_selectors.version_by_reference_unscoped(text, tenant="acme")

    def opened(proposed: list[Any], title: str, by: Any = author, **kw: Any) -> Any:
        return reviews.change_create(
            tenant=acme,
            actor=by,
            title=title,
            rollback_plan=kw.pop("rollback_plan", "Roll back to the last promoted version."),
            proposed=proposed,
            **kw,
        )

    # Metadata of the prompts pins the model they were evaluated with.
    prompt = registry_selectors.artifact_by_path_unscoped(
        ArtifactClass.PROMPT, "acme", "qualify-lead"
    )
    pins = PINS
    for number, text in (
        (
            "2.0.1",
            "You qualify leads for {{ product }}.\nAccount: {{ account_id }}\nRegion: {{ region }}\nAsk about their budget, timeline and region. Be brief.",
        ),
    ):
        registry.version_publish(
            artifact=prompt,
            content=registry.Content(text=text),
            impact="patch",
            reason="Shorter answers; model pinned for review.",
            version=number,
            input_variables=[
                {"name": "product"},
                {"name": "account_id"},
                {"name": "region", "required": False},
            ],
            metadata=pins,
            actor=None,
        )

    # Change gates for prompts (prompt-versioning-and-rollout.md): safety may not drop,
    # p95 latency at most 10% worse than the active version.
    reviews.change_gate_set(
        tenant=acme,
        artifact_class=registry_selectors.artifact_class_by_slug(ArtifactClass.PROMPT),
        gates=[
            {"metric": "safety", "no_regression": True},
            {"metric": "latency_p95_ms", "max_regression_pct": 10},
            {"metric": "accuracy", "min": 0.85},
        ],
        actor=None,
    )

    # 1. Two promoted changes, so a rollback has somewhere to go.
    reply = demo_prompt(
        acme,
        admin,  # the accountable owner: their approval authorises its promotions
        "support-reply",
        "Support reply",
        "Drafts the first answer to a support ticket.",
    )
    for number, impact, text, title, safety in (
        (
            "1.0.0",
            "major",
            "Answer the ticket from {{ customer }} about {{ topic }}. Be brief.",
            "Launch the support reply prompt",
            0.95,
        ),
        (
            "1.1.0",
            "minor",
            "Answer the ticket from {{ customer }} about {{ topic }}. Be brief and thank them.",
            "Thank the customer in support replies",
            0.96,
        ),
    ):
        version, _ = registry.version_publish(
            artifact=reply,
            content=registry.Content(text=text),
            impact=impact,
            reason=title,
            version=number,
            metadata={**pins, **evidence(PROMPT_RISK, pull_request(f"{reply.path}@{number}"))},
            actor=None,
        )
        change = opened(
            [version], title, description="See the diff.", risk_note="Low: wording only."
        )
        evaluate(change, version, safety, 0.9)
        deployment_ready(change, author)
        submitted(change, author)
        reviews.approval_decide(
            change=change, actor=reviewer, decision="approve", comment="Reads well."
        )
        reviews.approval_decide(change=change, actor=admin, decision="approve", comment="Ship it.")
        reviews.change_promote(change=change, actor=admin)

    # 2. Rejected: the major change waits for the CRM migration.
    change = opened(
        [ref("qualify-lead@2.0.0")],
        "Switch lead qualification to account ids",
        risk_note="Major: the CRM must send account_id first.",
    )
    evaluate(change, ref("qualify-lead@2.0.0"), 0.96, 0.91)
    submitted(change, author)
    reviews.approval_decide(
        change=change,
        actor=reviewer,
        decision="reject",
        comment="The CRM still sends customer names; revise after the migration.",
    )

    # 3. Failing check: the routing change misroutes a golden case.
    corpus_artifact = demo_artifact(
        ArtifactClass.GOLDEN_CORPUS,
        acme,
        author,
        "support-cases",
        ("Support cases", "Tickets with the queue they belong in."),
    )
    corpus, _ = registry.version_publish(
        artifact=corpus_artifact,
        content=registry.Content(
            data={
                "cases": [
                    {"id": "invoice", "input": {"intent": "billing"}, "expected": "billing"},
                    {
                        "id": "german",
                        "input": {"intent": "other", "language": "de"},
                        "expected": "dach",
                    },
                    {"id": "refund", "input": {"intent": "refund"}, "expected": "billing"},
                ]
            }
        ),
        impact="major",
        reason="Three cases from last quarter.",
        version="1.0.0",
        actor=None,
    )
    change = opened(
        [ref("support-routing@1.1.0")],
        "Route German tickets to the DACH queue",
        golden_corpus=corpus,
    )
    submitted(change, author)

    # 4. Waiting on each role.
    change = opened([ref("qualify-lead@2.0.1")], "Shorter lead qualification answers")
    evaluate(change, ref("qualify-lead@2.0.1"), 0.97, 0.92)
    submitted(change, author)  # waits on a reviewer and an administrator
    tone = registry_selectors.artifact_by_path_unscoped(
        ArtifactClass.PROMPT_TEMPLATE, "acme", "brand-tone"
    )
    tone2, _ = registry.version_publish(
        artifact=tone,
        content=registry.Content(
            text="Be concise, warm and precise. Never promise delivery dates. Never repeat a customer's personal details back to them."
        ),
        impact="patch",
        reason="Do not echo personal details.",
        version="1.0.1",
        actor=None,
    )
    change = opened(
        [tone2],
        "Stop echoing personal details",
        privacy_related=True,
        risk_note="Touches how personal data is handled.",
    )
    submitted(change, author)  # waits on the privacy officer and an administrator
    reviews.approval_decide(change=change, actor=admin, decision="approve", comment="Fine by me.")
    change = opened(
        [ref("qualify-lead@2.0.1")],
        "Hotfix: stop quoting prices",
        by=admin,
        emergency=True,
        external_egress=False,
        risk_note="Emergency: the prompt quoted list prices to prospects.",
    )
    evaluate(change, ref("qualify-lead@2.0.1"), 0.97, 0.92)
    submitted(change, by=admin)  # waits on the accountable owner and the security officer
    del privacy, security
