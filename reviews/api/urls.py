"""Routes for change requests, approval policies, stage criteria, rollbacks and deactivations under /api/v1/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from reviews.api import lifecycle, views

router = SimpleRouter(trailing_slash=True)
router.register("change-requests", views.ChangeRequestViewSet, basename="change-request")

urlpatterns = [
    *router.urls,
    path(
        "change-requests/<str:reference>/<str:action>/",
        views.UnknownChangeAction.as_view(),
        name="api-change-request-unknown-action",
    ),
    path(
        "approval-policies/<slug:tenant>/",
        views.ApprovalPolicyView.as_view(),
        name="api-approval-policy",
    ),
    path(
        "lifecycle-policies/<slug:tenant>/",
        lifecycle.LifecyclePolicyView.as_view(),
        name="api-lifecycle-policy",
    ),
    path("rollbacks/", views.RollbackView.as_view(), name="api-rollbacks"),
    path("deactivations/", views.DeactivationView.as_view(), name="api-deactivations"),
]
