{%- if cookiecutter.__interface == "asgi" -%}
"""The ASGI entry point: Django's views for HTTP, and Channels' consumers for WebSockets.

Django's core answers HTTP only; Channels (its project's own WebSocket layer) routes the WebSocket
connections. No channel layer is configured: a consumer talks to its own client only. Add one
(channels-redis) for messages between clients on different workers or replicas.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"{__package__}.settings")

# First: it sets Django up, which the consumers' imports need.
http_application = get_asgi_application()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402


class Echo(AsyncWebsocketConsumer):
    """/ws/echo: every message back to its sender, text as text and bytes as bytes."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data, bytes_data=bytes_data)


application = ProtocolTypeRouter(
    {
        "http": http_application,
        "websocket": URLRouter([path("ws/echo", Echo.as_asgi())]),
    }
)
{%- else -%}
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"{__package__}.settings")

application = get_asgi_application()
{%- endif %}
