"""Routes for the runtime under /api/v1/: the signed snapshot and slot resolution."""

from django.urls import path

from rollouts.api import views

urlpatterns = [
    path(
        "runtime/<slug:tenant>/<slug:application>/",
        views.RuntimeSnapshotView.as_view(),
        name="api-runtime",
    ),
    # Before the registry's "resolve/": the same path, GET still the registry's, plus POST.
    path("resolve/", views.ResolveView.as_view(), name="api-resolve"),
]
