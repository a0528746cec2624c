"""Which tables a backup holds, in which order, and how a row becomes JSON and back.

Included: every concrete model of the apps ``accounts``, ``governance``, ``registry``,
``reviews`` and ``rollouts``, with their many-to-many tables, except the purely operational
ones in ``EXCLUDED`` (worker heartbeats and log verification runs: they describe a running
process, not the registry; Django's sessions, axes' login attempts, contenttypes and auth's
permissions and groups belong to no governance app and are rebuilt by ``migrate``). The
users' admin groups and permissions tables refer to auth's rows, so they are left out too.

Rows are written as Django's serializer writes them: one JSON object per row, keyed by field
``attname`` (``tenant_id``, not ``tenant``); datetimes and dates ISO 8601, UUIDs and decimals
as text, binary as base64, JSON fields as JSON. ``field.to_python`` reads each value back.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import uuid
from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.db import models

APPS = ("accounts", "governance", "registry", "reviews", "rollouts")
#: Operational tables: what a process did, not what the registry holds.
EXCLUDED = frozenset({"governance.workerheartbeat", "governance.verificationrun"})

#: What ``--with-secrets`` keeps and a default backup leaves out: (model label, attname).
SECRET_FIELDS = (
    ("accounts.user", "password"),
    ("accounts.apitoken", "digest"),
    ("accounts.servicetoken", "digest"),
)


def label(model: type[models.Model]) -> str:
    return model._meta.label_lower


def _target(field: Any) -> type[models.Model] | None:
    """The model a relation points to (None for a lazy, unresolved one)."""
    related = field.related_model
    return related if isinstance(related, type) else None


def _included(model: type[models.Model]) -> bool:
    meta = model._meta
    if meta.app_label not in APPS or meta.proxy or not meta.managed or label(model) in EXCLUDED:
        return False
    # An auto-created many-to-many table is kept only when both ends are kept.
    ends = [_target(f) for f in meta.concrete_fields if f.is_relation]
    return not meta.auto_created or all(
        end is not None and end._meta.app_label in APPS and label(end) not in EXCLUDED
        for end in ends
    )


def backup_models() -> list[type[models.Model]]:
    """The included models, each after the models its foreign keys point to (cycles broken
    by name; the foreign keys are deferred to commit, so the order is for readers)."""
    chosen = sorted(
        (m for m in apps.get_models(include_auto_created=True) if _included(m)), key=label
    )
    by_label = {label(m): m for m in chosen}
    needs = {
        label(m): {
            label(end)
            for end in (_target(f) for f in m._meta.concrete_fields if f.is_relation)
            if end is not None and end is not m and label(end) in by_label
        }
        for m in chosen
    }
    ordered: list[type[models.Model]] = []
    done: set[str] = set()
    while len(ordered) < len(chosen):
        ready = [name for name in by_label if name not in done and needs[name] <= done]
        if not ready:  # a cycle: take the first remaining model
            ready = [next(name for name in by_label if name not in done)]
        for name in ready:
            done.add(name)
            ordered.append(by_label[name])
    return ordered


def fields_of(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    return list(model._meta.concrete_fields)


def _binary(value: Any) -> str:
    return base64.b64encode(bytes(value)).decode("ascii")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    return value


def encoder(field: models.Field[Any, Any]) -> Callable[[Any], Any]:
    """How one column's value (as ``values_list`` gives it) is written to JSON."""
    if field.get_internal_type() == "BinaryField":
        return lambda value: None if value is None else _binary(value)
    if isinstance(field, models.JSONField):
        return lambda value: value
    return _plain


def decoder(field: models.Field[Any, Any]) -> Callable[[Any], Any]:
    """How one JSON value is read back into what the field holds (``field.to_python``)."""
    if isinstance(field, models.JSONField):
        return lambda value: value
    if isinstance(field, models.DurationField):
        return lambda value: None if value is None else datetime.timedelta(seconds=value)
    return field.to_python
