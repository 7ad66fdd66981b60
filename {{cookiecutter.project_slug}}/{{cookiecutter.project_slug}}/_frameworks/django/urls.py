from django.urls import path

from . import views

urlpatterns = [
    path("", views.index),
    path("healthz", views.healthz),
    path("api/io", views.api_io),
    path("api/cpu", views.api_cpu),
    path("api/request", views.api_request),{%- if cookiecutter.__interface == "asgi" %}
    path("api/events", views.api_events),
{%- endif %}{%- if cookiecutter.database != "none" %}
    path("api/db", views.api_db),
    path("readyz", views.readyz),
{%- endif %}
]
