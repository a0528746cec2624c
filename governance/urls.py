"""Top-level routes: pages, the API under /api/v1/, probes, and the admin."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from governance import views
from governance.api.metrics import PrometheusMetricsView
from governance.kernel.views import post_only

admin.site.site_header = "AI Governance Registry administration"
admin.site.site_title = "Governance admin"

api_v1: list[URLPattern | URLResolver] = [
    path("", include("accounts.api.urls")),
    path("", include("governance.api.urls")),
    path("", include("reviews.waivers.api.urls")),
    path("", include("rollouts.api.urls")),  # before registry: it extends "resolve/" with POST
    path("", include("registry.api.urls")),
    path("", include("reviews.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]

urlpatterns = [
    path("favicon.ico", views.favicon, name="favicon"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    # Logging out is a POST; a GET of the address (a reload) goes home rather than a blank 405.
    path("logout/", post_only("home")(auth_views.LogoutView.as_view()), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    # OpenFeature Remote Evaluation Protocol: the paths are the protocol's, not ours.
    path("ofrep/v1/", include("rollouts.api.ofrep_urls")),
    path("registry/", include("registry.urls")),
    path("reviews/", include("reviews.urls")),
    path("rollouts/", include("rollouts.urls")),
    path("governance/", views.governance_index, name="governance"),
    path("governance/events/", views.event_feed, name="event-feed"),
    path("governance/events/<int:seq>/", views.event_detail, name="event-detail"),
    path("governance/verify/", views.verify_start, name="verify-start"),
    path("governance/verify/<uuid:run_id>/", views.verification_detail, name="verification-detail"),
    path("governance/metrics/", views.metrics_page, name="governance-metrics"),
    path("governance/readiness/", views.readiness_page, name="readiness"),
    path("governance/waivers/", include("reviews.waivers.urls")),
    path("", views.home, name="home"),
    path("metrics", PrometheusMetricsView.as_view(), name="prometheus-metrics"),
    path("", include("accounts.urls")),
]
