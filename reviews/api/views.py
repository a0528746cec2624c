"""REST endpoints of change requests, sign-off, evidence, approval policies and rollbacks.

Thin: serializers check the shape of input, one service call decides, selectors read what
is shown. Another tenant's change answers 404, as if it did not exist.
"""

from __future__ import annotations

import hashlib
from typing import Any, cast

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.views import webauthn_challenge
from accounts.models import Tenant, User
from accounts.passkeys import relying_party
from accounts.selectors import tenant_for_user
from governance.kernel import passkey_proof, reauth
from governance.kernel.errors import Conflict, DomainError, Forbidden, NotFound, fields_renamed
from governance.kernel.serializers import ApiErrorSerializer
from registry import selectors as registry_selectors
from registry.models import Artifact, Version
from reviews import selectors, services
from reviews.api.serializers import (
    ChangeCreateSerializer,
    ChangeDetailSerializer,
    ChangeReviseSerializer,
    ChangeRowSerializer,
    CommentSerializer,
    DeactivateSerializer,
    DecisionSerializer,
    DeploymentChecklistInSerializer,
    DeploymentChecklistSerializer,
    EvidenceAttachedSerializer,
    EvidenceSerializer,
    PolicySerializer,
    PolicyUpdateSerializer,
    PostmortemSerializer,
    RejectSerializer,
    RerunSerializer,
    RollbackResultSerializer,
    RollbackSerializer,
    SignOffChallengeInSerializer,
    SignOffChallengeSerializer,
    WithdrawSerializer,
)
from reviews.choices import Decision, Requirement
from reviews.filtersets import ChangeFilterSet
from reviews.models import ChangeRequest

#: How many of a tenant's own policy versions the policy endpoint lists.
POLICY_HISTORY_LIMIT = 50
FLAGS = ("privacy_related", "external_egress", "emergency")
REFERENCE = OpenApiParameter(
    "reference",
    str,
    OpenApiParameter.PATH,
    description="CR-YYYY-NNNN, or the change's UUID",
)


def _actor(request: Request) -> User:
    return cast(User, request.user)


def _change(request: Request, reference: str) -> ChangeRequest:
    return selectors.change_by_reference(reference, visible_to=request.user)


def _version_in(tenant: Tenant, text: str, *, field: str, user: Any) -> Version:
    """Resolve a version reference from the body, naming ``field`` (not ``proposed``) when it fails."""
    try:
        version = registry_selectors.version_by_reference(text, tenant=tenant.slug, visible_to=user)
    except DomainError as exc:
        raise DomainError(exc.message, field=field) from exc
    if version.artifact.tenant_id != tenant.pk:
        raise DomainError(f"{version.path} is not in {tenant.slug}.", field=field)
    return version


def _artifact(text: str, user: Any) -> Artifact:
    try:
        ref = registry_selectors.parse(text)
    except DomainError as exc:
        raise DomainError(exc.message, field="artifact") from exc
    if ref.class_slug is None or ref.tenant is None or ref.version is not None:
        raise DomainError(
            f"Name the artifact as class/tenant/slug, not '{text}' "
            "(pick the version to go back to with 'target').",
            field="artifact",
        )
    return registry_selectors.artifact_by_path(
        ref.class_slug, ref.tenant, ref.slug, visible_to=user
    )


def _confirm_sign_off(request: Request, password: str) -> None:
    """Sign-off is deliberate: the caller's password, unless their browser session confirmed it lately."""
    reauth.require_password_api(request, password, act="Signing off")


def _refuse_password_where_passkey_required(
    change: ChangeRequest, request: Request, decision: str, requirement: str | None
) -> None:
    """Where the slot needs a passkey, say so before asking for a password that would not do.
    (The service refuses it too; this only picks the right refusal first.)"""
    try:
        slot = services.decision_slot(change, _actor(request), decision, requirement)
    except DomainError:
        return  # the service says why, in its own order
    if selectors.passkey_required(change, slot):
        raise Forbidden(
            f"Signing off as {Requirement(slot).label} needs your passkey: ask for "
            f"POST /api/v1/change-requests/{change.reference}/passkey-challenge/ and send the "
            "authenticator's answer as 'passkey'.",
            field="passkey",
            code="passkey_required",
        )


SIGN_OFF_FLOW = """Signing off with a passkey (WebAuthn) instead of a password, in two calls:

1. `POST /api/v1/change-requests/{reference}/passkey-challenge/`
   `{decision, requirement?, comment?}` writes the approval statement of exactly this decision
   (change, revision, binding_sha256, decision, requirement, approver, SHA-256 of the comment,
   time, rp_id, origin) and answers `challenge_id`, `statement`, `statement_sha256` and
   `options` (PublicKeyCredentialRequestOptions JSON whose `challenge` is the statement's
   SHA-256, base64url, allowing only your active passkeys).
2. Hand `options` to the authenticator (in a browser:
   `navigator.credentials.get({publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options)})`),
   then `POST …/approve/` (or `…/reject/`) with the same `decision`, `requirement` and `comment`
   and `passkey: {challenge_id, credential}` (`credential` is the result's `toJSON()`). No
   password is needed. The statement and assertion are stored with the approval, logged in
   its event, shown under `approvals[].passkey` and carried by the signed record.

A challenge answers once, for this change and revision only, before `expires_at`. Refusals:
an unknown, someone else's or malformed `challenge_id` is 404 on `passkey.challenge_id`; an
answered or expired one 409 on `passkey.challenge_id`; a challenge for another change 409
`passkey_replayed`; a change revised since, or another decision, requirement or comment,
409 `passkey_statement_mismatch`; a bad, foreign or revoked key 403 on `passkey`."""


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ApiErrorSerializer, description=description)


SIGN_OFF_ERRORS = {
    400: _error(
        "Bad input, named (comment, requirement, passkey.challenge_id, passkey.credential; "
        "passkey: not a WebAuthn assertion)."
    ),
    403: _error(
        "password_required (field password); passkey_required (field passkey: the slot needs "
        "a passkey); the passkey is not yours, is revoked, or its signature does not hold "
        "(field passkey); you may not decide here."
    ),
    404: _error("No such change (reference) or challenge of yours (passkey.challenge_id)."),
    409: _error(
        "The challenge was answered already or expired (passkey.challenge_id); it was issued "
        "for another change (passkey_replayed) or another revision, decision, requirement or "
        "comment (passkey_statement_mismatch); the lifecycle does not allow it (status)."
    ),
}


def _detail(change: ChangeRequest, code: int = status.HTTP_200_OK, *, user: Any) -> Response:
    """The change as it stands after a service call (re-read: services work on a locked copy)."""
    fresh = selectors.change_by_reference(str(change.pk), visible_to=user)
    return Response(ChangeDetailSerializer(fresh, context={"user": user}).data, status=code)


class ChangeFilter(ChangeFilterSet):
    """The change list's filters (``waiting_for_me`` among them), plus the author."""

    author = django_filters.CharFilter(field_name="author__username", label="Author (username)")

    class Meta(ChangeFilterSet.Meta):
        fields = [*ChangeFilterSet.Meta.fields, "author"]


class ChangeRequestViewSet(viewsets.GenericViewSet[ChangeRequest]):
    """Change requests of your tenants: open, read, revise, and act on them."""

    lookup_field = "reference"
    lookup_value_regex = "[^/]+"
    serializer_class = ChangeRowSerializer
    filterset_class = ChangeFilter
    queryset = ChangeRequest.objects.none()

    def get_queryset(self) -> QuerySet[ChangeRequest]:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return ChangeRequest.objects.none()
        return selectors.changes_visible_to(self.request.user)

    @extend_schema(responses=ChangeRowSerializer(many=True))
    def list(self, _request: Request) -> Response:
        rows = self.filter_queryset(self.get_queryset()).select_related("rolled_back_by")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(ChangeRowSerializer(page, many=True).data)

    @extend_schema(request=ChangeCreateSerializer, responses={201: ChangeDetailSerializer})
    def create(self, request: Request) -> Response:
        body = ChangeCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        flags = data.get("flags") or {}
        change = services.change_create(
            tenant=tenant_for_user(request.user, data["tenant"]),
            actor=_actor(request),
            title=data["title"],
            description=data["description"],
            risk_note=data["risk_note"],
            rollback_plan=data["rollback_plan"],
            migration_plan=data["migration_plan"],
            proposed=data["proposed"],
            golden_corpus=data["golden_corpus"] or None,
            **{flag: flags.get(flag, False) for flag in FLAGS},
        )
        return _detail(change, status.HTTP_201_CREATED, user=request.user)

    @extend_schema(parameters=[REFERENCE], responses=ChangeDetailSerializer)
    def retrieve(self, request: Request, reference: str) -> Response:
        change = _change(request, reference)
        return Response(ChangeDetailSerializer(change, context={"user": request.user}).data)

    @extend_schema(
        parameters=[REFERENCE], request=ChangeReviseSerializer, responses=ChangeDetailSerializer
    )
    def partial_update(self, request: Request, reference: str) -> Response:
        """Revise: a new revision, back to draft; every live approval is voided."""
        change = _change(request, reference)
        body = ChangeReviseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        flags = data.get("flags") or {}
        corpus = None  # left out: kept
        if "golden_corpus" in data:
            corpus = data["golden_corpus"] or ""  # null clears it, as "" does
        change = services.change_revise(
            change=change,
            actor=_actor(request),
            reason=data["reason"],
            proposed=data.get("proposed"),
            title=data.get("title"),
            description=data.get("description"),
            risk_note=data.get("risk_note"),
            rollback_plan=data.get("rollback_plan"),
            migration_plan=data.get("migration_plan"),
            golden_corpus=corpus,
            **{flag: flags.get(flag) for flag in FLAGS},
        )
        return _detail(change, user=request.user)

    @extend_schema(parameters=[REFERENCE], request=None, responses=ChangeDetailSerializer)
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, reference: str) -> Response:
        """Send a draft for review: approval slots are fixed from the policy, checks start."""
        change = services.change_submit(change=_change(request, reference), actor=_actor(request))
        return _detail(change, user=request.user)

    def _decide(self, request: Request, reference: str, decision: str) -> Response:
        change = _change(request, reference)
        body = (RejectSerializer if decision == Decision.REJECT else DecisionSerializer)(
            data=request.data
        )
        body.is_valid(raise_exception=True)
        data = body.validated_data
        answer = data["passkey"]
        if answer is None:
            _refuse_password_where_passkey_required(change, request, decision, data["requirement"])
            _confirm_sign_off(request, data["password"])
        # With a passkey the assertion is the deliberate act: no password.
        with fields_renamed({"challenge": "passkey.challenge_id"}):
            services.approval_decide(
                change=change,
                actor=_actor(request),
                decision=decision,
                comment=data["comment"],
                requirement=data["requirement"],
                passkey=(
                    services.PasskeyAnswer(
                        challenge_id=answer["challenge_id"], credential=answer["credential"]
                    )
                    if answer is not None
                    else None
                ),
            )
        return _detail(change, user=request.user)

    @extend_schema(
        parameters=[REFERENCE],
        request=DecisionSerializer,
        responses={200: ChangeDetailSerializer, **SIGN_OFF_ERRORS},
        description="Approve in a slot you hold, with your password, or with your passkey "
        "(`passkey: {challenge_id, credential}`, the answer to passkey-challenge for this "
        "decision; see there). Where the slot needs a passkey (`requirements[].passkey_required`) "
        "a password-only sign-off is 403 `passkey_required` on `passkey`. Repeating it "
        "changes nothing.",
    )
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, reference: str) -> Response:
        """Approve in a slot you hold (with your password or passkey). Repeating it changes nothing."""
        return self._decide(request, reference, Decision.APPROVE)

    @extend_schema(
        parameters=[REFERENCE],
        request=RejectSerializer,
        responses={200: ChangeDetailSerializer, **SIGN_OFF_ERRORS},
        description="Reject, saying why, with your password or your passkey (as approve).",
    )
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, reference: str) -> Response:
        """Reject, saying why (with your password or passkey)."""
        return self._decide(request, reference, Decision.REJECT)

    @extend_schema(
        parameters=[REFERENCE],
        request=SignOffChallengeInSerializer,
        responses={
            200: SignOffChallengeSerializer,
            400: _error("Bad input, named: decision, requirement, comment; origin."),
            403: _error("You cannot decide here (the author, no role in an open slot)."),
            404: _error("No such change in your tenants (field reference)."),
            409: _error(
                "You have no active passkey (field passkey); the change is not open for "
                "review (status); you decided already (decision)."
            ),
        },
        description=SIGN_OFF_FLOW,
    )
    @action(detail=True, methods=["post"], url_path="passkey-challenge")
    def passkey_challenge(self, request: Request, reference: str) -> Response:
        """Step 1 of a passkey sign-off: the statement to sign and the WebAuthn request options."""
        change = _change(request, reference)
        body = SignOffChallengeInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        row, statement, options = services.sign_off_challenge(
            change=change,
            actor=_actor(request),
            decision=data["decision"],
            requirement=data["requirement"],
            comment=data["comment"],
            party=relying_party(request),
        )
        fields = passkey_proof.parse_statement(statement)
        return Response(
            SignOffChallengeSerializer(
                {
                    **webauthn_challenge(row, options),
                    "change": change.reference,
                    "revision": fields["revision"],
                    "decision": fields["decision"],
                    "requirement": fields["requirement"],
                    "statement": statement,
                    "statement_sha256": hashlib.sha256(statement.encode()).hexdigest(),
                }
            ).data
        )

    @extend_schema(
        parameters=[REFERENCE], request=WithdrawSerializer, responses=ChangeDetailSerializer
    )
    @action(detail=True, methods=["post"])
    def withdraw(self, request: Request, reference: str) -> Response:
        """Give up on a change (author or administrator); it stays on record."""
        change = _change(request, reference)
        body = WithdrawSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        change = services.change_withdraw(
            change=change, actor=_actor(request), reason=body.validated_data["reason"]
        )
        return _detail(change, user=request.user)

    @extend_schema(parameters=[REFERENCE], request=None, responses=ChangeDetailSerializer)
    @action(detail=True, methods=["post"])
    def promote(self, request: Request, reference: str) -> Response:
        """Make an approved change's versions active (administrators)."""
        change = services.change_promote(change=_change(request, reference), actor=_actor(request))
        return _detail(change, user=request.user)

    @extend_schema(
        parameters=[REFERENCE],
        request=EvidenceSerializer,
        responses={201: EvidenceAttachedSerializer},
    )
    @action(detail=True, methods=["post"])
    def evidence(self, request: Request, reference: str) -> Response:
        """Attach an evaluation report; it voids live approvals and re-runs the evidence checks."""
        change = _change(request, reference)
        body = EvidenceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        report = services.evidence_attach(
            change=change,
            actor=_actor(request),
            version=_version_in(change.tenant, data["version"], field="version", user=request.user),
            metrics=data["metrics"],
            bias=data["bias"],
            safety=data["safety"],
            seed=data["seed"],
            rng=data["rng"],
            test_run_ids=data["test_run_ids"],
            notes=data["notes"],
            simulation=data["simulation"],
        )
        fresh = selectors.change_by_reference(str(change.pk), visible_to=request.user)
        return Response(
            EvidenceAttachedSerializer(fresh, context={"report": report}).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        methods=["GET"],
        parameters=[REFERENCE],
        responses=DeploymentChecklistSerializer,
        description="The deployment checklist of the change's current revision (404 when none).",
    )
    @extend_schema(
        methods=["POST"],
        parameters=[REFERENCE],
        request=DeploymentChecklistInSerializer,
        responses={201: DeploymentChecklistSerializer},
        description="Complete the deployment checklist of the change's current revision (the "
        "author or an administrator, while the change is open); a blank part is refused.",
    )
    @action(detail=True, methods=["get", "post"], url_path="deployment-checklist")
    def deployment_checklist(self, request: Request, reference: str) -> Response:
        """The Approved stage's deployment checklist: read it, or complete it."""
        change = _change(request, reference)
        if request.method == "GET":
            found = selectors.deployment_checklist_of(change)
            if found is None:
                raise NotFound(
                    f"{change.reference} has no deployment checklist for revision "
                    f"{change.revision}.",
                    field="reference",
                )
            return Response(DeploymentChecklistSerializer(found).data)
        body = DeploymentChecklistInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        checklist = services.deployment_checklist_complete(
            change=change, actor=_actor(request), **body.validated_data
        )
        return Response(
            DeploymentChecklistSerializer(checklist).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        parameters=[REFERENCE], request=RerunSerializer, responses=ChangeDetailSerializer
    )
    @action(detail=True, methods=["post"])
    def rerun(self, request: Request, reference: str) -> Response:
        """Run one required check (or all) again on the current revision."""
        change = _change(request, reference)
        body = RerunSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.check_rerun(change=change, kind=body.validated_data["kind"], actor=_actor(request))
        return _detail(change, user=request.user)

    @extend_schema(
        parameters=[REFERENCE], request=CommentSerializer, responses={201: ChangeDetailSerializer}
    )
    @action(detail=True, methods=["post"])
    def comment(self, request: Request, reference: str) -> Response:
        """Add a remark in Markdown (any member of the change's tenant), on the change or on one line of its diff."""
        change = _change(request, reference)
        body = CommentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        services.comment_add(
            change=change,
            actor=_actor(request),
            body=data["body"],
            anchor=services.line_anchor(data["path"], data["side"], data["line"]),
        )
        return _detail(change, status.HTTP_201_CREATED, user=request.user)

    @extend_schema(
        parameters=[REFERENCE], request=PostmortemSerializer, responses=ChangeDetailSerializer
    )
    @action(detail=True, methods=["post"])
    def postmortem(self, request: Request, reference: str) -> Response:
        """Record a promoted emergency change's post-mortem (author, owner, administrator or security officer)."""
        change = _change(request, reference)
        body = PostmortemSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        change = services.postmortem_record(
            change=change,
            actor=_actor(request),
            summary=body.validated_data["summary"],
            url=body.validated_data["url"],
        )
        return _detail(change, user=request.user)


@extend_schema(exclude=True)
class UnknownChangeAction(APIView):
    """Any other ``change-requests/{reference}/{action}/``: a JSON 404 naming the action."""

    def _refuse(self, _request: Request, *, action: str, **_url: str) -> Response:
        raise NotFound(
            f"No action '{action}' on change requests; use submit, passkey-challenge, approve, "
            "reject, withdraw, promote, evidence, rerun, comment or postmortem.",
            field="action",
        )

    get = post = put = patch = delete = _refuse


def _policy_body(tenant: Tenant) -> dict[str, Any]:
    row, document = selectors.effective_policy(tenant)
    scope = "built-in" if row is None else ("tenant" if row.tenant_id == tenant.pk else "default")
    return dict(
        PolicySerializer(
            {
                "tenant": tenant.slug,
                "number": row.number if row else "built-in",
                "scope": scope,
                "rules": document,
                "reason": row.reason if row else None,
                "created_at": row.created_at if row else None,
                "created_by": row.created_by.username if row and row.created_by else None,
                "history": list(selectors.policy_history(tenant)[:POLICY_HISTORY_LIMIT]),
            }
        ).data
    )


class ApprovalPolicyView(APIView):
    """Who must approve which change in a tenant: the policy in force and its versions."""

    @extend_schema(responses=PolicySerializer)
    def get(self, request: Request, tenant: str) -> Response:
        return Response(_policy_body(tenant_for_user(request.user, tenant)))

    @extend_schema(request=PolicyUpdateSerializer, responses=PolicySerializer)
    def put(self, request: Request, tenant: str) -> Response:
        """Save a new version of the tenant's policy (administrators)."""
        found = tenant_for_user(request.user, tenant)
        body = PolicyUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.approval_policy_update(
            tenant=found,
            rules=body.validated_data["rules"],
            reason=body.validated_data["reason"],
            actor=_actor(request),
        )
        return Response(_policy_body(found))


class RollbackView(APIView):
    """Restore a version that was active before (administrators; no approvals needed)."""

    @extend_schema(request=RollbackSerializer, responses={201: RollbackResultSerializer})
    def post(self, request: Request) -> Response:
        body = RollbackSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        artifact = _artifact(data["artifact"], request.user)
        target = (
            _version_in(artifact.tenant, data["target"], field="target", user=request.user)
            if data["target"]
            else None
        )
        try:
            activation = services.rollback(
                artifact=artifact,
                actor=_actor(request),
                reason=data["reason"],
                target=target,
                override_reason=data["override_reason"],
            )
        except Conflict as exc:
            if exc.code != services.NOTHING_TO_ROLL_BACK_TO:
                raise
            raise Conflict(
                f"{exc.message} Switch it off with POST /api/v1/deactivations/ "
                f'{{"artifact": "{artifact.path}", "reason": "..."}}.',
                field=exc.field,
                code=exc.code,
            ) from exc
        return Response(RollbackResultSerializer(activation).data, status=status.HTTP_201_CREATED)


class DeactivationView(APIView):
    """The safety switch: leave an artifact with no active version (administrators)."""

    @extend_schema(request=DeactivateSerializer, responses={201: RollbackResultSerializer})
    def post(self, request: Request) -> Response:
        body = DeactivateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        activation = services.artifact_deactivate(
            artifact=_artifact(data["artifact"], request.user),
            actor=_actor(request),
            reason=data["reason"],
        )
        return Response(RollbackResultSerializer(activation).data, status=status.HTTP_201_CREATED)
