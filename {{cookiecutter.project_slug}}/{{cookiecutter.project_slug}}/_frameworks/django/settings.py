"""Django settings for the sample app: everything that differs between machines comes from the environment."""

from __future__ import annotations

import os

from . import site

BASE_DIR = site.PACKAGE_DIR.parent


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = os.environ.get("DEBUG", "").lower() in {"1", "true", "yes", "on"}
# Never baked into an image: the orchestrator passes it in. Only DEBUG runs get a throwaway key.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or ("insecure-debug-only" if DEBUG else "")
if not SECRET_KEY:
    raise RuntimeError("DJANGO_SECRET_KEY is not set (or set DEBUG=1 for a local run)")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

ROOT_URLCONF = f"{__package__}.urls"
WSGI_APPLICATION = f"{__package__}.wsgi.application"
ASGI_APPLICATION = f"{__package__}.asgi.application"

INSTALLED_APPS = ["django.contrib.staticfiles"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
{%- if cookiecutter.static_strategy == "whitenoise" %}
    # static_strategy=whitenoise: the app answers /static/ itself, from collectstatic's output.
    "{{ cookiecutter.__static_package }}.middleware.{{ 'WhiteNoiseMiddleware' if cookiecutter.__static_package == 'whitenoise' else 'ServeStaticMiddleware' }}",
{%- endif %}
    "django.middleware.common.CommonMiddleware",
]
DATABASES: dict[str, dict[str, str]] = {}
TEMPLATES: list[dict[str, object]] = []

# nginx sets X-Forwarded-Proto; the app server trusts it only from the proxy's address.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
USE_X_FORWARDED_HOST = False

STATIC_URL = site.static_url()
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [site.STATIC_DIR]
{%- if cookiecutter.static_strategy == "whitenoise" %}
# Hashed, compressed copies: safe to cache for a year, because a changed file gets a new name.
STORAGES = {
    "staticfiles": {
        "BACKEND": "{{ cookiecutter.__static_package }}.storage.CompressedManifestStaticFilesStorage"
    }
}
{%- endif %}

USE_TZ = True
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
