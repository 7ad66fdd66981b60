"""Django settings for the sample app: everything that differs between machines comes from the environment."""

from __future__ import annotations

import os
{%- if cookiecutter.database != "none" %}
from urllib.parse import unquote, urlsplit

from pyserve_runtime.settings import db_pool_size, request_timeout_s
{%- endif %}

from . import site

BASE_DIR = site.PACKAGE_DIR.parent


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = os.environ.get("DEBUG", "").lower() in {"1", "true", "yes", "on"}
# Never baked into an image: the orchestrator passes it in. Only DEBUG runs get a throwaway key.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or ("insecure-debug-only" if DEBUG else "")
if not SECRET_KEY:
    raise RuntimeError("DJANGO_SECRET_KEY is not set (or set DEBUG=1 for a local run)")
# nginx already drops unknown hosts; 127.0.0.1 stays allowed for the container's healthcheck.
ALLOWED_HOSTS = [*env_list("ALLOWED_HOSTS", "localhost"), "127.0.0.1"]
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

ROOT_URLCONF = f"{__package__}.urls"
WSGI_APPLICATION = f"{__package__}.wsgi.application"
ASGI_APPLICATION = f"{__package__}.asgi.application"

{%- set apps = (['"django.contrib.staticfiles"'] if cookiecutter.static_strategy != "none" else []) + (["__package__"] if cookiecutter.database != "none" else []) %}
{%- if cookiecutter.database != "none" %}
# The package is an app for its table (models.py), which its migrations (migrations/) create at each release.
{%- endif %}
INSTALLED_APPS = [{{ apps | join(", ") }}]
{%- if cookiecutter.database != "none" %}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
{%- endif %}
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
{%- if cookiecutter.static_strategy == "whitenoise" %}
    # static_strategy=whitenoise: the app answers /static/ itself, from collectstatic's output.
    "{{ cookiecutter.__static_package }}.middleware.{{ 'WhiteNoiseMiddleware' if cookiecutter.__static_package == 'whitenoise' else 'ServeStaticMiddleware' }}",
{%- endif %}
    "django.middleware.common.CommonMiddleware",
    # Forms and other unsafe requests need the csrftoken cookie's token and, for an Origin, this
    # host and scheme: https behind a TLS load balancer (nginx's TRUSTED_PROXIES), http otherwise.
    "django.middleware.csrf.CsrfViewMiddleware",
    # X-Frame-Options: DENY from the app too (nginx adds it where an app does not).
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
{%- if cookiecutter.database != "none" %}


def database_from_url(url: str) -> dict[str, object]:
    """DATABASE_URL (postgresql://user:password@host:5432/name) as Django's settings, with its own pool."""
    parts = urlsplit(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        # Each worker's pool (psycopg_pool under Django) holds at most DB_POOL_SIZE connections:
        # `pyserve serve` sets it from the plan, so that replicas x workers x pool stays within
        # DB_MAX_CONNECTIONS. A request that finds them all busy waits, up to REQUEST_TIMEOUT.
        "OPTIONS": {
            "pool": {
                "min_size": 1,
                "max_size": db_pool_size(os.environ) or 2,
                "timeout": request_timeout_s(os.environ),
            }
        },
    }


# Without DATABASE_URL (the project's own tests) the app runs; only /api/db and /readyz need it.
DATABASES = {"default": database_from_url(os.environ["DATABASE_URL"])} if os.environ.get("DATABASE_URL") else {}
{%- else %}
DATABASES: dict[str, dict[str, str]] = {}
{%- endif %}
TEMPLATES: list[dict[str, object]] = []

# nginx sets X-Forwarded-Proto (a trusted proxy's, else its own scheme) and the Host; the app server
# believes them from nginx only (FORWARDED_ALLOW_IPS).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
USE_X_FORWARDED_HOST = False
# Browsers send the CSRF cookie back over https only (and to http://localhost, a secure context).
CSRF_COOKIE_SECURE = True
# What `manage.py check --deploy` asks of the app is done in front of it here:
SILENCED_SYSTEM_CHECKS = [
    # W004, no SECURE_HSTS_SECONDS: nginx sends Strict-Transport-Security on every https response.
    "security.W004",
{%- if cookiecutter.tls == "none" %}
    # W008, no SECURE_SSL_REDIRECT: TLS ends in front of nginx, at the load balancer, which redirects
    # http:// there; the app only ever hears plain HTTP.
{%- else %}
    # W008, no SECURE_SSL_REDIRECT: nginx ends TLS and answers every http:// request with a redirect
    # to https:// itself; the app only ever hears requests that came over https.
{%- endif %}
    "security.W008",
]
{%- if cookiecutter.static_strategy != "none" %}

STATIC_URL = site.static_url()
# `pyserve static` runs collectstatic at image build and before `make local`.
STATIC_ROOT = site.static_root()
STATICFILES_DIRS = [site.STATIC_DIR]
{%- endif %}
{%- if cookiecutter.static_strategy == "nginx" %}
# Hashed copies (css/site.0123456789ab.css): nginx caches them for a year, as a changed file gets a new name.
STORAGES = {"staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"}}
{%- elif cookiecutter.static_strategy == "whitenoise" %}
# Hashed, compressed copies: safe to cache for a year, because a changed file gets a new name.
STORAGES = {"staticfiles": {"BACKEND": "{{ cookiecutter.__static_package }}.storage.CompressedManifestStaticFilesStorage"}}
{%- elif cookiecutter.static_strategy == "cdn" %}
# With a bucket configured, collectstatic uploads hashed copies to S3 (django-storages) and pages link
# to AWS_S3_CUSTOM_DOMAIN (the CDN in front of the bucket). Without one, files are collected locally
# and nginx serves /static/ as the origin of a pull CDN whose URL is STATIC_URL.
AWS_STORAGE_BUCKET_NAME = os.environ.get("AWS_STORAGE_BUCKET_NAME", "")
if AWS_STORAGE_BUCKET_NAME:
    AWS_S3_CUSTOM_DOMAIN = os.environ.get("AWS_S3_CUSTOM_DOMAIN") or None
    AWS_S3_REGION_NAME = os.environ.get("AWS_S3_REGION_NAME") or None
    AWS_LOCATION = "static"
    AWS_S3_OBJECT_PARAMETERS = {"CacheControl": "public, max-age=31536000, immutable"}
    STORAGES = {"staticfiles": {"BACKEND": "storages.backends.s3.S3ManifestStaticStorage"}}
else:
    STORAGES = {"staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"}}
{%- endif %}

USE_TZ = True
# Django sets the process's TZ to this: UTC, as every other line of the log (its default is America/Chicago).
TIME_ZONE = "UTC"
# The server configures logging (pyserve_runtime.logs: LOG_FORMAT, LOG_LEVEL and the request id on every
# line), and Django's loggers reach its handler; Django's own config would replace that handler.
LOGGING_CONFIG = None
