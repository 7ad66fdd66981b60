"""The app every server runs: APP_MODULE, with one answer of the server layer's own in front of it.

GET {LIVENESS_PATH} (deploy/settings.py) answers 200 "alive" without calling the app, so the
container healthcheck, `make local` and the Kubernetes probes can tell that the server is up and
its workers answer, whatever app APP_MODULE names: one from PyPI need not have a /healthz. The app's
own check, where it has one, is HEALTH_PATH (deploy/healthcheck.py). nginx refuses paths that start
with a dot, so this answer is seen on the app server's own port only.
"""

{% if cookiecutter.__interface == 'wsgi' %}from collections.abc import Callable, Iterable{% else %}from collections.abc import Awaitable, Callable{% endif %}
from typing import Any

from .serve import load_app
from .settings import LIVENESS_PATH, from_environment
{% if cookiecutter.__interface == "wsgi" %}
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def with_liveness(inner: WSGIApp) -> WSGIApp:
    def served(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == LIVENESS_PATH:
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6")])
            return [b"alive\n"]
        return inner(environ, start_response)

    return served
{%- else %}
ASGIApp = Callable[[dict[str, Any], Callable[..., Awaitable[Any]], Callable[..., Awaitable[None]]], Awaitable[None]]


def with_liveness(inner: ASGIApp) -> ASGIApp:
    async def served(
        scope: dict[str, Any], receive: Callable[..., Awaitable[Any]], send: Callable[..., Awaitable[None]]
    ) -> None:
        if scope["type"] == "http" and scope["path"] == LIVENESS_PATH:
            headers = [(b"content-type", b"text/plain"), (b"content-length", b"6")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"alive\n"})
            return
        await inner(scope, receive, send)

    return served
{%- endif %}


app = with_liveness(load_app(from_environment().app_module))
