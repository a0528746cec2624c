"""An OpenFeature provider backed by ``RegistryClient``'s local evaluation (no network call).

It answers as the server's OFREP endpoint does (``rollouts/api/ofrep.py``), but in process:

- Flag key ``<application>.<slot>`` (``sales-agent.qualifyLead``); the provider takes one or
  more clients and picks the one whose ``application`` the key names.
- ``targeting_key`` is the subject (it decides the canary bucket); a ``pin`` attribute (a
  version) serves that version (``STATIC``) when it may serve.
- A string flag: ``value`` is the version reference ``slug:version#sha256``, ``variant`` the
  version, ``reason`` the resolve reason (OpenFeature's own names: ``STATIC``,
  ``TARGETING_MATCH``, ``SPLIT``, ``DEFAULT``, ``DISABLED``, and in an outage the client's
  ``CACHED``/``STALE``), ``flag_metadata`` the rest as OFREP names it (``tenant``,
  ``application``, ``slot``, ``ref``, ``path``, ``version``, ``sha256``, ``stage``,
  ``rollout``, ``rollout_id``, ``step``, ``arm``, ``bucket``, ``sequence``, ``branch`` — the
  resolve answer's variant —, ``warnings``, ``content_kind``, ``content``) plus the client's
  ``freshness`` and ``rule_reason``; absent ones left out.
- Nothing serves (``DISABLED``, no ``ref``): the code's default, variant ``disabled``; while
  the artifact's safety switch is engaged, variant ``halted`` and ``metadata["halted"]`` says
  who halted it and why.
- An object flag returns the same fields as a mapping; boolean, integer and float flags answer
  ``TYPE_MISMATCH`` with the code's default.

Install with the extra: ``pip install 'governance-registry-client[openfeature]'``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType
from openfeature.provider import AbstractProvider, Metadata

__all__ = ["RegistryProvider", "flag_key"]

_META = (
    "tenant",
    "application",
    "slot",
    "ref",
    "path",
    "version",
    "sha256",
    "stage",
    "rollout",
    "rollout_id",
    "step",
    "arm",
    "bucket",
    "sequence",
    "freshness",
    "rule_reason",
    "halted",
)


class _Failure(NamedTuple):
    code: ErrorCode
    message: str


class _Client(Protocol):
    application: str

    def resolve(self, slot: str, *, subject: str | None = None, pin: str | None = None) -> Any: ...


def flag_key(application: str, slot: str) -> str:
    """The flag key of a slot, as the server's OFREP endpoint names it."""
    return f"{application}.{slot}"


def _metadata(resolution: Any) -> dict[str, str | int]:
    fields: dict[str, Any] = {name: getattr(resolution, name, None) for name in _META}
    fields["branch"] = getattr(resolution, "variant", None)
    warnings = getattr(resolution, "warnings", None) or ()
    fields["warnings"] = "\n".join(str(w) for w in warnings) or None
    fields["content_kind"] = getattr(resolution, "content_kind", None)
    content = getattr(resolution, "content", None)
    if isinstance(content, str):
        fields["content"] = content
    elif content is not None:
        import rfc8785

        fields["content"] = rfc8785.dumps(content).decode()
    return {
        k: (v if isinstance(v, int) and not isinstance(v, bool) else str(v))
        for k, v in fields.items()
        if v is not None
    }


class RegistryProvider(AbstractProvider):
    """OpenFeature provider over one or more ``RegistryClient`` (one per application)."""

    def __init__(self, *clients: _Client) -> None:
        super().__init__()
        if not clients:
            raise ValueError("RegistryProvider needs at least one RegistryClient.")
        self.clients: dict[str, _Client] = {c.application: c for c in clients}

    def get_metadata(self) -> Metadata:
        return Metadata(name="governance-registry")

    def shutdown(self) -> None:
        for client in self.clients.values():
            close = getattr(client, "close", None)
            if callable(close):
                close()

    # --- evaluation -----------------------------------------------------------------------

    def _resolve(self, key: str, context: EvaluationContext | None) -> Any:
        """The client's resolution, or a ``_Failure`` (an error code and a message)."""
        application, dot, slot = key.partition(".")
        client = self.clients.get(application) if dot and slot else None
        if client is None:
            return _Failure(ErrorCode.FLAG_NOT_FOUND, f"No application for flag {key!r}.")
        subject = context.targeting_key if context is not None else None
        attributes = context.attributes if context is not None else {}
        pin = attributes.get("pin")
        if pin is not None and not isinstance(pin, str):
            return _Failure(ErrorCode.INVALID_CONTEXT, "context attribute 'pin' must be a string.")
        try:
            return client.resolve(slot, subject=subject or None, pin=pin or None)
        except LookupError as exc:
            return _Failure(ErrorCode.FLAG_NOT_FOUND, str(exc) or f"No slot {slot!r}.")
        except ValueError as exc:
            return _Failure(ErrorCode.INVALID_CONTEXT, str(exc))
        except Exception as exc:  # noqa: BLE001 - the provider answers the default, never raises
            return _Failure(ErrorCode.GENERAL, f"{type(exc).__name__}: {exc}")

    def resolve_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        found = self._resolve(flag_key, evaluation_context)
        if isinstance(found, _Failure):
            return FlagResolutionDetails(
                default_value, error_code=found.code, error_message=found.message, reason="ERROR"
            )
        meta = _metadata(found)
        ref = getattr(found, "ref", None)
        if ref is None or found.reason == "DISABLED":
            # Nothing to reference (DISABLED, or a configured pin without its ref): the
            # code's default; the variant names the pinned version when there is one.
            variant = "disabled" if found.reason == "DISABLED" else found.version or "disabled"
            if getattr(found, "halted", None):
                variant = "halted"
            return FlagResolutionDetails(
                default_value, reason=str(found.reason), variant=variant, flag_metadata=meta
            )
        return FlagResolutionDetails(
            str(ref), reason=str(found.reason), variant=found.version, flag_metadata=meta
        )

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        found = self._resolve(flag_key, evaluation_context)
        if isinstance(found, _Failure):
            return FlagResolutionDetails(
                default_value, error_code=found.code, error_message=found.message, reason="ERROR"
            )
        meta = _metadata(found)
        if getattr(found, "ref", None) is None:
            variant = "halted" if getattr(found, "halted", None) else "disabled"
            return FlagResolutionDetails(
                default_value, reason=str(found.reason), variant=variant, flag_metadata=meta
            )
        value: dict[str, FlagValueType] = dict(meta)
        content = getattr(found, "content", None)
        if content is not None and not isinstance(content, str):
            value["content"] = content
        return FlagResolutionDetails(
            value, reason=str(found.reason), variant=found.version, flag_metadata=meta
        )

    def _mismatch(self, default: Any, flag_key: str) -> FlagResolutionDetails[Any]:
        return FlagResolutionDetails(
            default,
            error_code=ErrorCode.TYPE_MISMATCH,
            error_message=f"{flag_key} is a string flag (a version reference).",
            reason="ERROR",
        )

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,  # noqa: ARG002 - the OpenFeature SDK fixes the signature
    ) -> FlagResolutionDetails[bool]:
        return self._mismatch(default_value, flag_key)

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,  # noqa: ARG002 - the OpenFeature SDK fixes the signature
    ) -> FlagResolutionDetails[int]:
        return self._mismatch(default_value, flag_key)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,  # noqa: ARG002 - the OpenFeature SDK fixes the signature
    ) -> FlagResolutionDetails[float]:
        return self._mismatch(default_value, flag_key)
