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
    path(VERSION, views.version, name="version"),
    path(VERSION + "diff/", views.diff, name="diff"),
    path(VERSION + "deprecate/", views.version_deprecate, name="version-deprecate"),
    path(VERSION + "retire/", views.version_retire, name="version-retire"),
]
