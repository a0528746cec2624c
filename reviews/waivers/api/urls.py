"""Routes for waivers under /api/v1/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from reviews.waivers.api.views import UnknownWaiverAction, WaiverViewSet

router = SimpleRouter(trailing_slash=True)
router.register("waivers", WaiverViewSet, basename="waiver")

urlpatterns = [
    *router.urls,
    path(
        "waivers/<str:reference>/<str:action>/",
        UnknownWaiverAction.as_view(),
        name="api-waiver-unknown-action",
    ),
]
