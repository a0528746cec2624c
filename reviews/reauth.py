"""Kept for older imports: the password re-confirmation lives in :mod:`governance.kernel.reauth`."""

from __future__ import annotations

from governance.kernel.reauth import SESSION_KEY, confirm, recently_confirmed

__all__ = ["SESSION_KEY", "confirm", "recently_confirmed"]
