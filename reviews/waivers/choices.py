"""A waiver's states, and which checks need a security officer: the one place they are named."""

from django.db import models

from reviews.choices import CheckKind


class WaiverState(models.TextChoices):
    """A waiver's state, always derived from its dates and stamps (never stored)."""

    PENDING = "pending", "Awaiting security officer"
    ACTIVE = "active", "Active"
    EXPIRING_SOON = "expiring_soon", "Expiring soon"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"


#: States in which a waiver lets a failed check pass.
COVERING_STATES = frozenset({WaiverState.ACTIVE, WaiverState.EXPIRING_SOON})

#: Waiving one of these also needs a security officer's countersignature.
SECURITY_CHECKS = frozenset({CheckKind.POLICY, CheckKind.PACK_VERIFICATION, CheckKind.MODEL_PINS})

#: The order the waiver list shows states in: what needs attention first.
STATE_ORDER = [
    WaiverState.EXPIRING_SOON,
    WaiverState.PENDING,
    WaiverState.ACTIVE,
    WaiverState.EXPIRED,
    WaiverState.REVOKED,
]
