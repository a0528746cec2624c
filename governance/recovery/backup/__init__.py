"""Backups of the whole registry: create, verify (without Django), restore, and take as a run.

The names are loaded on first use, so that ``python -m governance.recovery.backup.archive``
runs without Django: only ``archive`` is Django-free.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from governance.recovery.backup.archive import verify_backup as backup_verify
    from governance.recovery.backup.dump import BackupResult, backup_create, latest_backup
    from governance.recovery.backup.restore import BackupRefused, RestoreResult, backup_restore
    from governance.recovery.backup.take import backup_take

_WHERE = {
    "backup_verify": ("archive", "verify_backup"),
    "BackupResult": ("dump", "BackupResult"),
    "backup_create": ("dump", "backup_create"),
    "latest_backup": ("dump", "latest_backup"),
    "BackupRefused": ("restore", "BackupRefused"),
    "RestoreResult": ("restore", "RestoreResult"),
    "backup_restore": ("restore", "backup_restore"),
    "backup_take": ("take", "backup_take"),
}

__all__ = [
    "BackupRefused",
    "BackupResult",
    "RestoreResult",
    "backup_create",
    "backup_restore",
    "backup_take",
    "backup_verify",
    "latest_backup",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _WHERE[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
