"""Page routes for registry."""

from django.urls import path

from registry import views

app_name = "registry"
urlpatterns = [path("", views.index, name="index")]
