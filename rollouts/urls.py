"""Page routes for rollouts: the list, a rollout and its actions, the runtime matrix, applications and slots."""

from django.urls import path

from rollouts import views

app_name = "rollouts"
urlpatterns = [
    path("", views.rollout_list, name="list"),
    path("new/", views.rollout_new, name="new"),
    path("fleet/", views.fleet, name="fleet"),
    path("usage/<slug:cls>/<slug:tenant>/<slug:slug>/", views.artifact_usage, name="usage"),
    path("RO-<int:number>/", views.rollout_detail, name="rollout"),
    path("RO-<int:number>/phase-manifest.json", views.rollout_manifest, name="rollout-manifest"),
    path("RO-<int:number>/dashboard/", views.rollout_dashboard, name="rollout-dashboard"),
    path("RO-<int:number>/<str:action>/", views.rollout_action, name="rollout-action"),
    path("runtime/", views.matrix, name="matrix"),
    path("applications/", views.application_list, name="applications"),
    path("applications/new/", views.application_new, name="application-new"),
    path("applications/<slug:slug>/", views.application_detail, name="application"),
    path("applications/<slug:slug>/edit/", views.application_edit, name="application-edit"),
    path("applications/<slug:slug>/slots/new/", views.slot_new, name="slot-new"),
    path("applications/<slug:slug>/slots/<str:name>/", views.slot_detail, name="slot"),
    path("applications/<slug:slug>/slots/<str:name>/edit/", views.slot_edit, name="slot-edit"),
    path(
        "applications/<slug:slug>/slots/<str:name>/override/",
        views.slot_override,
        name="slot-override",
    ),
]
