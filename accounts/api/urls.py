"""Routes for /api/v1/ accounts endpoints."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from accounts.api.views import (
    MeView,
    PasskeyViewSet,
    ServiceTokenViewSet,
    TenantViewSet,
    TokenViewSet,
)

router = SimpleRouter(trailing_slash=True)
router.register("tenants", TenantViewSet, basename="tenant")
router.register("tokens", TokenViewSet, basename="token")
router.register("service-tokens", ServiceTokenViewSet, basename="service-token")
router.register("passkeys", PasskeyViewSet, basename="passkey")

urlpatterns = [path("me/", MeView.as_view(), name="api-me"), *router.urls]
