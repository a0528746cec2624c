"""The ``governance`` app's models: the kernel's (notifications, heartbeats, the event log) and,
under their old label, the reviews floor's waivers (``reviews.waivers.models``)."""

# The tables live where their code does; importing them here registers them with the app.
from governance.kernel.events.models import (
    Checkpoint,
    Event,
    EventChainHead,
    SigningKey,
    VerificationRun,
)
from governance.kernel.models import Notification, WorkerHeartbeat
from governance.recovery.models import RecoveryRun
from reviews.waivers.models import Waiver, WaiverCounter

__all__ = [
    "Checkpoint",
    "Event",
    "EventChainHead",
    "Notification",
    "RecoveryRun",
    "SigningKey",
    "VerificationRun",
    "Waiver",
    "WaiverCounter",
    "WorkerHeartbeat",
]
