"""The sample Django views. Replace them with yours: APP_MODULE points the server at the project."""

from __future__ import annotations

import {{ "asyncio" if cookiecutter.__interface == "asgi" else "time" }}
{%- if cookiecutter.database != "none" and cookiecutter.__interface == "asgi" %}
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar
{%- endif %}

{% if cookiecutter.database != "none" and cookiecutter.__interface == "asgi" -%}
from asgiref.sync import sync_to_async
from django.conf import settings
{% endif -%}
{% if cookiecutter.database != "none" -%}
from django.db import connection
{% endif -%}
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse{% if cookiecutter.__interface == "asgi" %}, StreamingHttpResponse{% endif %}
from django.middleware.csrf import get_token
from django.templatetags.static import static
{%- if cookiecutter.database != "none" %}
from psycopg import Error as PsycopgError
{%- endif %}

from . import site
{%- if cookiecutter.database != "none" %}
from .models import Visit
{%- endif %}
{%- set define = "async def" if cookiecutter.__interface == "asgi" else "def" %}
{%- if cookiecutter.__interface == "asgi" %}

# Under ASGI, Django runs a sync view through sync_to_async(thread_sensitive=True): one at a time
# per worker. The views are async so that waiting on I/O does not queue every other request.
{%- endif %}


{{ define }} index(request: HttpRequest) -> HttpResponse:
    return HttpResponse(site.index_html(static))  # static(): the hashed name from the manifest


{{ define }} healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


{{ define }} api_io(request: HttpRequest) -> HttpResponse:
    try:
        ms = site.duration_ms(request.GET.get("ms"))
    except ValueError as error:
        return HttpResponseBadRequest(str(error))
{%- if cookiecutter.__interface == "asgi" %}
    await asyncio.sleep(ms / 1000)  # stands for an awaited database or HTTP call
{%- else %}
    time.sleep(ms / 1000)  # stands for a database or HTTP call: blocks this thread, not the CPU
{%- endif %}
    return JsonResponse({"waited_ms": ms})


{{ define }} api_request(request: HttpRequest) -> HttpResponse:
    # A POST gets here only past the CSRF middleware: an Origin of this scheme and host, and the
    # token of the csrftoken cookie, which this answer sets (get_token) for the form's next POST.
    get_token(request)
    client = request.META.get("REMOTE_ADDR")
    return JsonResponse(site.request_seen(request.scheme, request.get_host(), client, request.build_absolute_uri()))


{{ define }} api_cpu(request: HttpRequest) -> HttpResponse:
    try:
        ms = site.duration_ms(request.GET.get("ms"))
    except ValueError as error:
        return HttpResponseBadRequest(str(error))
    # CPU work holds the GIL wherever it runs; running it inline is honest about that.
    return JsonResponse(site.burn_cpu(ms))
{%- if cookiecutter.__interface == "asgi" %}


async def api_events(request: HttpRequest) -> HttpResponse:
    try:
        count = site.event_count(request.GET.get("n"))
    except ValueError as error:
        return HttpResponseBadRequest(str(error))
    stream = site.event_stream(count)
    return StreamingHttpResponse(stream, content_type=site.EVENT_STREAM_TYPE, headers=site.EVENT_STREAM_HEADERS)
{%- endif %}
{%- if cookiecutter.database != "none" %}
{%- if cookiecutter.__interface == "asgi" %}


# Django's ORM is synchronous: under ASGI its queries run on threads. sync_to_async's default
# (thread_sensitive=True) puts them all on one thread per worker, one query at a time whatever the
# pool holds; a thread for each pooled connection makes the pool's size this worker's limit.
# Without DATABASE_URL (the project's own tests) Django puts its dummy backend there, with no pool.
POOL = settings.DATABASES.get("default", {}).get("OPTIONS", {}).get("pool")
DATABASE_THREADS = ThreadPoolExecutor(max_workers=POOL["max_size"] if POOL else 1, thread_name_prefix="database")
T = TypeVar("T")


async def run_on_a_database_thread(function: Callable[..., T], *args: object) -> T:
    return await sync_to_async(function, thread_sensitive=False, executor=DATABASE_THREADS)(*args)
{%- endif %}


# How long /readyz waits for a connection before it answers that the database is not there.
READY_TIMEOUT_S = 2.0


def query_database(ms: int) -> int:
    """A visit recorded through Django's pool, and a wait of `ms` on the database that stands for what
    a real query spends there; the connection handed back when it is done (connection.close())."""
    try:
        visit = Visit.objects.create()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(%s)", [ms / 1000])
    finally:
        connection.close()
    return visit.id


def database_answers() -> bool:
    """A connection from Django's pool within READY_TIMEOUT_S (a request would wait up to REQUEST_TIMEOUT)."""
    pool = connection.pool
    try:
        pool.open()  # Django opens it with the first query; a no-op after that
        with pool.connection(timeout=READY_TIMEOUT_S) as pooled:
            pooled.execute("SELECT 1")
    except PsycopgError:  # the pool's timeout among them
        return False
    return True


{{ define }} api_db(request: HttpRequest) -> HttpResponse:
    try:
        ms = site.duration_ms(request.GET.get("ms"))
    except ValueError as error:
        return HttpResponseBadRequest(str(error))
{%- if cookiecutter.__interface == "asgi" %}
    number = await run_on_a_database_thread(query_database, ms)
{%- else %}
    number = query_database(ms)
{%- endif %}
    return JsonResponse({"db_ms": ms, "visit": number})


{{ define }} readyz(request: HttpRequest) -> HttpResponse:
    # Readiness, not liveness: a database outage takes the pod out of the Service, it does not restart it.
{%- if cookiecutter.__interface == "asgi" %}
    ready = await run_on_a_database_thread(database_answers)
{%- else %}
    ready = database_answers()
{%- endif %}
    return JsonResponse({"database": "ok" if ready else "unavailable"}, status=200 if ready else 503)
{%- endif %}
