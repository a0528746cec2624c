"""The OpenFeature Remote Evaluation Protocol (OFREP v1) over the runtime: every slot is a flag.

An application using ``openfeature-sdk`` with the OFREP provider gets the answer
``POST /api/v1/resolve/`` gives for the same inputs: both go through ``rollouts.runtime``
(the cached snapshot, then ``resolve``); nothing here decides what serves.

- Flag key: ``<application>.<slot>`` (``sales-agent.qualifyLead``). An application slug has no
  dot and a slot name none either, so the key splits at its one dot.
- Caller: a service token of the tenant with the scope ``runtime:read`` (``Authorization:
  Bearer gsv_…``); the answer is for the token's tenant. A person's token is refused (401).
- Evaluation context: ``targetingKey`` is the subject (it decides the canary bucket; without
  one a canary serves the stable version, never a random one); ``pin`` (single evaluation
  only) serves that version (``STATIC``) if it may serve; ``tenant``, if sent, must be the
  token's (another reads as missing); ``application`` narrows a bulk evaluation to one
  application. Other attributes are accepted and ignored.
- Success: ``value`` is the version reference ``slug:version#sha256`` (a string flag),
  ``variant`` the version (``1.2.0``), ``reason`` ours, which are OpenFeature's reasons
  (``STATIC``, ``TARGETING_MATCH``, ``SPLIT``, ``DEFAULT``, ``DISABLED``), ``metadata`` the
  rest of the answer (see ``flag_metadata``). A switched-off slot answers ``DISABLED`` with no
  ``value`` and the variant ``disabled``: the provider then returns the code's default. A halted
  slot (its artifact's safety switch engaged) answers the same with the variant ``halted`` and
  ``metadata.halted`` saying who halted it and why.
- Errors, shaped as the protocol says (``errorCode``, ``errorDetails``): 400 ``PARSE_ERROR``
  (the body is not a JSON object) or ``INVALID_CONTEXT`` (a context attribute of the wrong
  type, a pin that may not serve), 401 (no or a bad token), 403 (the token lacks the scope),
  404 ``FLAG_NOT_FOUND`` (no such application or slot for the token's tenant).
- Bulk (``POST /ofrep/v1/evaluate/flags``): every slot of every application the tenant may
  read (its own and the platform's), or of ``context.application``; a weak ``ETag`` over the
  answers (the log's sequence left out, so an unrelated event does not void a client's
  cache) and ``304`` on a matching ``If-None-Match``.
"""

from __future__ import annotations

import hashlib
import re
import threading
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.authentication import ServicePrincipal, ServiceTokenAuthentication, require_scope
from accounts.choices import TokenScope
from governance.kernel.errors import DomainError, NotFound
from governance.kernel.events import generation
from governance.kernel.events.services import canonical
from rollouts import runtime
from rollouts.api.views import reader_may_read, request_generation
from rollouts.choices import Reason
from rollouts.models import APP_SLUG_RE, SLOT_NAME_RE
from rollouts.selectors import application_slugs_readable_by

__all__ = [
    "BulkEvaluateView",
    "EvaluateFlagView",
    "evaluation",
    "flag_key",
    "flag_metadata",
]

FLAG_KEY_RE = re.compile(
    rf"(?P<application>{APP_SLUG_RE.strip('^$')})\.(?P<slot>{SLOT_NAME_RE.strip('^$')})"
)
#: The longest context attribute we read (a subject or a pin), as POST /api/v1/resolve/ takes.
MAX_SUBJECT = 1000
MAX_PIN = 300


class OfrepError(Exception):
    """An evaluation that fails as the protocol says: an HTTP status and an OpenFeature error code."""

    def __init__(self, http_status: int, code: str, details: str) -> None:
        super().__init__(details)
        self.http_status = http_status
        self.code = code
        self.details = details


def flag_key(application: str, slot: str) -> str:
    """The OFREP flag key of a slot: ``<application>.<slot>``."""
    return f"{application}.{slot}"


def flag_metadata(answer: runtime.Answer) -> dict[str, str | int]:
    """The answer's other fields as flag metadata (strings and numbers only; absent ones left out).

    ``tenant``, ``application``, ``slot``, ``ref``, ``path``, ``version``, ``sha256``, ``stage``,
    ``rollout`` (``RO-<n>``), ``rollout_id``, ``step``, ``arm``, ``bucket``, ``sequence``,
    ``branch`` (the resolve API's ``variant``: pinned, canary, stable, on, override, default
    or disabled), ``warnings`` (one per line), ``content_kind`` and ``content`` (text as is,
    JSON as canonical JSON text; files are fetched by reference), ``halted`` (while the
    artifact's safety switch is engaged: who engaged it and why).
    """
    fields: dict[str, Any] = {
        "tenant": answer.tenant,
        "application": answer.application,
        "slot": answer.slot,
        "ref": answer.ref,
        "path": answer.path,
        "version": answer.version,
        "sha256": answer.sha256,
        "stage": answer.stage,
        "rollout": answer.rollout,
        "rollout_id": answer.rollout_id,
        "step": answer.step,
        "arm": answer.arm,
        "bucket": answer.bucket,
        "sequence": answer.sequence,
        "branch": answer.variant,
        "warnings": "\n".join(answer.warnings) or None,
        "content_kind": answer.content_kind,
        "halted": answer.halted,
    }
    if isinstance(answer.content, str):
        fields["content"] = answer.content
    elif answer.content is not None:
        fields["content"] = canonical(answer.content).decode()
    return {k: (v if isinstance(v, int) else str(v)) for k, v in fields.items() if v is not None}


def evaluation(key: str, answer: runtime.Answer) -> dict[str, Any]:
    """One flag's successful evaluation, as OFREP shapes it."""
    body: dict[str, Any] = {"key": key, "reason": str(answer.reason)}
    if answer.reason == Reason.DISABLED or answer.ref is None:
        # No value: the provider serves the code's default (the protocol's "code default").
        body["variant"] = "halted" if answer.halted is not None else "disabled"
    else:
        body["value"] = answer.ref
        body["variant"] = answer.version
    body["metadata"] = flag_metadata(answer)
    return body


# --- reading the request ------------------------------------------------------------------


def _context(request: Request) -> dict[str, Any]:
    """The evaluation context of the body (``{}`` when the body has none)."""
    try:
        data = request.data
    except exceptions.ParseError as exc:
        raise OfrepError(400, "PARSE_ERROR", f"The body is not JSON: {exc.detail}") from exc
    if not isinstance(data, dict):
        raise OfrepError(400, "PARSE_ERROR", 'The body must be a JSON object: {"context": {...}}.')
    context = data.get("context", {})
    if context is None:
        return {}
    if not isinstance(context, dict):
        raise OfrepError(400, "INVALID_CONTEXT", "'context' must be a JSON object.")
    return context


def _text(context: dict[str, Any], name: str, limit: int) -> str | None:
    """A string attribute of the context, or None when absent (or empty)."""
    value = context.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise OfrepError(
            400, "INVALID_CONTEXT", f"context.{name} must be a string, not {type(value).__name__}."
        )
    if len(value) > limit:
        raise OfrepError(
            400, "INVALID_CONTEXT", f"context.{name} is longer than {limit} characters."
        )
    return value


def _tenant(request: Request, context: dict[str, Any]) -> str:
    """The tenant the answer is for: the token's; a ``tenant`` attribute must name it."""
    principal = request.user
    assert isinstance(principal, ServicePrincipal)  # the authentication class makes sure
    tenant = _text(context, "tenant", 63) or principal.tenant_slug
    try:
        reader_may_read(principal, tenant)
    except DomainError as exc:
        raise _domain(exc) from exc
    return tenant


def _domain(exc: DomainError) -> OfrepError:
    """A runtime refusal as OFREP says it: a pin at fault is the context's; a missing tenant,
    application or slot is a missing flag; a refused scope is 403."""
    if exc.field == "pin":
        return OfrepError(400, "INVALID_CONTEXT", f"context.pin: {exc.message}")
    if isinstance(exc, NotFound):
        return OfrepError(404, "FLAG_NOT_FOUND", exc.message)
    if exc.status_code == 403:
        return OfrepError(403, "GENERAL", exc.message)
    return OfrepError(400, "INVALID_CONTEXT", exc.message)


def ofrep_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Authentication, permission and parse failures in the protocol's shape (``errorCode``,
    ``errorDetails``), keeping ``WWW-Authenticate`` and ``Retry-After``."""
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    code = "PARSE_ERROR" if isinstance(exc, exceptions.ParseError) else "GENERAL"
    body: dict[str, Any] = {"errorCode": code, "errorDetails": str(exc.detail)}
    key = context.get("kwargs", {}).get("key")
    if key is not None:
        body = {"key": key, **body}
    shaped = Response(body, status=response.status_code)
    for header in ("WWW-Authenticate", "Retry-After", "Allow"):
        if header in response:
            shaped[header] = response[header]
    return shaped


class OfrepView(APIView):
    """What both OFREP endpoints share: service tokens with ``runtime:read``, JSON in and out,
    errors in the protocol's shape."""

    authentication_classes = [ServiceTokenAuthentication]
    permission_classes = [require_scope(TokenScope.RUNTIME_READ)]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]

    def get_exception_handler(self) -> Any:
        return ofrep_exception_handler


# --- single flag --------------------------------------------------------------------------


class EvaluateFlagView(OfrepView):
    """``POST /ofrep/v1/evaluate/flags/{key}``: what one slot serves for the context's subject."""

    @extend_schema(
        operation_id="ofrep_evaluate_flag",
        parameters=[
            OpenApiParameter("key", str, OpenApiParameter.PATH, description="<application>.<slot>")
        ],
        request=OpenApiTypes.OBJECT,
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT, description="key, value, reason, variant, metadata"
            ),
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="PARSE_ERROR or INVALID_CONTEXT"),
            401: OpenApiResponse(description="No service token, or a bad one"),
            403: OpenApiResponse(description="The token lacks runtime:read"),
            404: OpenApiResponse(OpenApiTypes.OBJECT, description="FLAG_NOT_FOUND"),
        },
        tags=["ofrep"],
    )
    def post(self, request: Request, key: str) -> Response:
        try:
            return Response(self._evaluate(request, key))
        except OfrepError as exc:
            body = {"key": key, "errorCode": exc.code, "errorDetails": exc.details}
            return Response(body, status=exc.http_status)

    def _evaluate(self, request: Request, key: str) -> dict[str, Any]:
        context = _context(request)
        subject = _text(context, "targetingKey", MAX_SUBJECT)
        pin = _text(context, "pin", MAX_PIN)
        tenant = _tenant(request, context)
        parts = FLAG_KEY_RE.fullmatch(key)
        if parts is None:
            raise OfrepError(
                404,
                "FLAG_NOT_FOUND",
                f"No flag '{key}': a flag key is '<application>.<slot>', e.g. "
                "'sales-agent.qualifyLead'.",
            )
        try:
            answer = runtime.answer(
                tenant,
                parts["application"],
                parts["slot"],
                subject=subject,
                pin=pin,
                generation_now=request_generation(request),
            )
        except DomainError as exc:
            raise _domain(exc) from exc
        return evaluation(key, answer)


# --- bulk ---------------------------------------------------------------------------------


_apps_cache: dict[str, tuple[str, list[str]]] = {}
_apps_lock = threading.Lock()


def _applications(tenant: str, gen: str) -> list[str]:
    """The slugs of the applications ``tenant`` may read, cached by the runtime generation
    ``gen`` (warm: no SQL), as the snapshots are."""
    with _apps_lock:
        hit = _apps_cache.get(tenant)
    if hit is not None and hit[0] == gen:
        return hit[1]
    slugs = application_slugs_readable_by(tenant)
    with _apps_lock:
        if len(_apps_cache) > runtime.CACHE_SIZE:
            _apps_cache.clear()
        _apps_cache[tenant] = (gen, slugs)
    return slugs


def bulk_etag(flags: list[dict[str, Any]]) -> str:
    """A weak ETag over the answers without the log's sequence: equal while every flag answers
    the same, whatever else the log recorded meanwhile."""
    stable = [
        {**f, "metadata": {k: v for k, v in f.get("metadata", {}).items() if k != "sequence"}}
        for f in flags
    ]
    return f'W/"{hashlib.sha256(canonical(stable)).hexdigest()[:32]}"'


class BulkEvaluateView(OfrepView):
    """``POST /ofrep/v1/evaluate/flags``: every flag the token's tenant may read, for one context."""

    @extend_schema(
        operation_id="ofrep_evaluate_flags",
        parameters=[
            OpenApiParameter(
                "If-None-Match", str, OpenApiParameter.HEADER, description="A previous ETag"
            )
        ],
        request=OpenApiTypes.OBJECT,
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="flags[], metadata"),
            304: OpenApiResponse(description="Unchanged since the ETag sent"),
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="PARSE_ERROR or INVALID_CONTEXT"),
            401: OpenApiResponse(description="No service token, or a bad one"),
            403: OpenApiResponse(description="The token lacks runtime:read"),
        },
        tags=["ofrep"],
    )
    def post(self, request: Request) -> HttpResponse:
        try:
            flags, sequence, tenant = self._evaluate(request)
        except OfrepError as exc:
            failure = {"errorCode": exc.code, "errorDetails": exc.details}
            return Response(failure, status=exc.http_status)
        etag = bulk_etag(flags)
        headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
        if runtime.etag_matches(request.headers.get("If-None-Match", ""), etag):
            return HttpResponse(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
        body: dict[str, Any] = {
            "flags": flags,
            "metadata": {"tenant": tenant, "sequence": sequence},
        }
        return Response(body, headers=headers)

    def _evaluate(self, request: Request) -> tuple[list[dict[str, Any]], int, str]:
        context = _context(request)
        subject = _text(context, "targetingKey", MAX_SUBJECT)
        if _text(context, "pin", MAX_PIN) is not None:
            raise OfrepError(
                400,
                "INVALID_CONTEXT",
                "context.pin pins one flag: send it to /ofrep/v1/evaluate/flags/{key}.",
            )
        tenant = _tenant(request, context)
        only = _text(context, "application", 100)
        gen = request_generation(request) or generation.current()
        applications = _applications(tenant, gen)
        if only is not None:
            if only not in applications:
                raise OfrepError(
                    400,
                    "INVALID_CONTEXT",
                    f"context.application: no application '{only}' that tenant '{tenant}' reads.",
                )
            applications = [only]
        flags: list[dict[str, Any]] = []
        sequence = 0
        for application in applications:
            try:
                snap = runtime.snapshot(tenant, application, generation_now=gen)
            except NotFound:
                continue  # gone since the list was read
            sequence = max(sequence, snap.sequence)
            for slot in sorted(snap.slots):
                answer = runtime.resolve(snap, slot, subject)
                flags.append(evaluation(flag_key(application, slot), answer))
        return flags, sequence, tenant
