"""Page routes for the registry."""

from django.urls import path

from registry import views

app_name = "registry"
ARTIFACT = "<slug:cls>/<slug:tenant>/<slug:slug>/"
VERSION = ARTIFACT + "v/<str:version>/"
urlpatterns = [
    path("", views.index, name="index"),
    path("new/", views.artifact_new, name="artifact-new"),
    path(ARTIFACT, views.artifact, name="artifact"),
    path(ARTIFACT + "publish/", views.publish, name="publish"),
    path(ARTIFACT + "owner/", views.artifact_owner, name="artifact-owner"),
    path(ARTIFACT + "describe/", views.artifact_describe, name="artifact-describe"),
    path(
        ARTIFACT + "action-eligible/",
        views.artifact_action_eligible,
        name="artifact-action-eligible",
    ),
    path(ARTIFACT + "deputy/", views.artifact_deputy, name="artifact-deputy"),
    path(
        ARTIFACT + "safety-switch/engage/",
        views.artifact_safety_switch,
        {"action": "engage"},
        name="artifact-safety-engage",
    ),
    path(
        ARTIFACT + "safety-switch/release/",
        views.artifact_safety_switch,
        {"action": "release"},
        name="artifact-safety-release",
    ),
    path(VERSION, views.version, name="version"),
    path(VERSION + "diff/", views.diff, name="diff"),
    path(VERSION + "deprecate/", views.version_deprecate, name="version-deprecate"),
    path(VERSION + "retire/", views.version_retire, name="version-retire"),
]
