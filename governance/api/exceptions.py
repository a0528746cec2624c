"""API plumbing shared by every app: the exception handler that shapes every error."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from governance.kernel.errors import DomainError


def _error(
    code: str, message: str, field: str | None, http_status: int, detail: Any = None
) -> Response:
    body: dict[str, Any] = {"error": {"code": code, "message": message, "field": field}}
    if detail is not None:
        body["error"]["detail"] = detail
    return Response(body, status=http_status)


def _first_message(detail: Any) -> tuple[str | None, str]:
    """Pick the first (field, message) out of DRF's nested validation detail."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            inner_field, message = _first_message(value)
            field = None if key == "non_field_errors" else key
            if inner_field and field:
                field = f"{field}.{inner_field}"
            return field or inner_field, message
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return None, str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every API error is ``{"error": {"code", "message", "field"}}`` with a 4xx status."""
    if isinstance(exc, DomainError):
        return _error(exc.code, exc.message, exc.field, exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        field, message = _first_message(exc.detail)
        return _error("invalid", message, field, status.HTTP_400_BAD_REQUEST, exc.detail)
    if isinstance(exc, exceptions.APIException):
        code = getattr(exc.detail, "code", None) or exc.default_code
        resp = _error(str(code), str(exc.detail), None, response.status_code)
        for header in ("WWW-Authenticate", "Retry-After", "Allow"):
            if header in response:
                resp[header] = response[header]
        return resp
    return response
