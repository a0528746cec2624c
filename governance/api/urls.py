"""Routes for the event log under /api/v1/ (waivers: ``reviews.waivers.api.urls``)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from governance.api.views import (
    CheckpointViewSet,
    EventViewSet,
    PublicKeysView,
    VerificationRunViewSet,
)

router = SimpleRouter(trailing_slash=True)
router.register("events", EventViewSet, basename="event")
router.register("checkpoints", CheckpointViewSet, basename="checkpoint")
router.register("verifications", VerificationRunViewSet, basename="verification")

urlpatterns = [
    path("keys/", PublicKeysView.as_view(), name="api-keys"),
    *router.urls,
]
