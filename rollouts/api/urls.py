"""Routes of rollouts under /api/v1/: the runtime (snapshot, slot resolution) and the
management of applications, slots, overrides and rollouts."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from rollouts.api import telemetry, views

router = SimpleRouter(trailing_slash=True)
router.register("rollouts", views.RolloutViewSet, basename="rollout")

APP = "applications/<slug:slug>/"
SLOT = APP + "slots/<str:name>/"
urlpatterns = [
    path(
        "runtime/<slug:tenant>/<slug:application>/",
        views.RuntimeSnapshotView.as_view(),
        name="api-runtime",
    ),
    # Before the registry's "resolve/": the same path, GET still the registry's, plus POST.
    path("resolve/", views.ResolveView.as_view(), name="api-resolve"),
    *router.urls,
    path(
        "rollouts/<str:number>/<str:action>/",
        views.UnknownRolloutAction.as_view(),
        name="api-rollout-unknown-action",
    ),
    path("telemetry/", telemetry.TelemetryView.as_view(), name="api-telemetry"),
    path("applications/", views.ApplicationList.as_view(), name="api-applications"),
    path(APP, views.ApplicationDetail.as_view(), name="api-application"),
    path(APP + "slots/", views.SlotList.as_view(), name="api-slots"),
    path(SLOT, views.SlotDetail.as_view(), name="api-slot"),
    path(SLOT + "overrides/<slug:tenant>/", views.OverrideDetail.as_view(), name="api-override"),
]
