"""The sample Django views. Replace them with yours: APP_MODULE points the server at the project."""

from __future__ import annotations

import {{ "asyncio" if cookiecutter.__interface == "asgi" else "time" }}

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.templatetags.static import static

from . import site
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


{{ define }} api_cpu(request: HttpRequest) -> HttpResponse:
    try:
        ms = site.duration_ms(request.GET.get("ms"))
    except ValueError as error:
        return HttpResponseBadRequest(str(error))
    # CPU work holds the GIL wherever it runs; running it inline is honest about that.
    return JsonResponse(site.burn_cpu(ms))
