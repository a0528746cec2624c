"""The waiver pages, mounted at /governance/waivers/ by the project's routes (names unchanged)."""

from django.urls import path

from reviews.waivers import views

urlpatterns = [
    path("", views.waiver_list, name="waivers"),
    path("new/", views.waiver_new, name="waiver-new"),
    path("<str:reference>/", views.waiver_detail, name="waiver-detail"),
    path("<str:reference>/renew/", views.waiver_renew, name="waiver-renew"),
    path("<str:reference>/revoke/", views.waiver_revoke, name="waiver-revoke"),
    path("<str:reference>/countersign/", views.waiver_countersign, name="waiver-countersign"),
]
