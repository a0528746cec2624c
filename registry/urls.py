"""Page routes for the registry."""

from django.urls import path

from registry import views

app_name = "registry"
ARTIFACT = "<slug:cls>/<slug:tenant>/<slug:slug>/"
urlpatterns = [
    path("", views.index, name="index"),
    path("new/", views.artifact_new, name="artifact-new"),
    path(ARTIFACT, views.artifact, name="artifact"),
    path(ARTIFACT + "publish/", views.publish, name="publish"),
    path(ARTIFACT + "v/<str:version>/", views.version, name="version"),
    path(ARTIFACT + "v/<str:version>/diff/", views.diff, name="diff"),
]
