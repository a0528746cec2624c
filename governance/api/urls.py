"""Routes for the event log and waivers under /api/v1/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from governance.api.views import (
    CheckpointViewSet,
    EventViewSet,
    PublicKeysView,
    UnknownWaiverAction,
    VerificationRunViewSet,
    WaiverViewSet,
)

router = SimpleRouter(trailing_slash=True)
router.register("events", EventViewSet, basename="event")
router.register("checkpoints", CheckpointViewSet, basename="checkpoint")
router.register("verifications", VerificationRunViewSet, basename="verification")
router.register("waivers", WaiverViewSet, basename="waiver")

urlpatterns = [
    path("keys/", PublicKeysView.as_view(), name="api-keys"),
    *router.urls,
    path(
        "waivers/<str:reference>/<str:action>/",
        UnknownWaiverAction.as_view(),
        name="api-waiver-unknown-action",
    ),
]
