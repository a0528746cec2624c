"""Page routes for accounts: home, tenants, tokens."""

from django.urls import path

from accounts import views

urlpatterns = [
    path("", views.home, name="home"),
    path("tenants/<slug:slug>/", views.tenant_detail, name="tenant-detail"),
    path("tenants/<slug:slug>/grant/", views.tenant_grant, name="tenant-grant"),
    path("tenants/<slug:slug>/revoke/", views.tenant_revoke, name="tenant-revoke"),
    path("account/tokens/", views.tokens, name="tokens"),
    path("account/tokens/<uuid:token_id>/revoke/", views.token_revoke, name="token-revoke"),
]
