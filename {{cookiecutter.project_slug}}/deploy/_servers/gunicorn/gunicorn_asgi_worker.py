"""gunicorn's ASGI worker: uvicorn-worker, its WebSockets pinged and their messages capped (deploy/settings.py).

No per-message compression: its zlib state costs each open WebSocket about 40 KiB (measured, 1000
open: 62 MiB with it, 22 MiB without), and nginx does not pass the offer on either.
"""

from __future__ import annotations

from typing import Any, ClassVar

from uvicorn_worker import UvicornWorker

from . import settings


class UvicornWorkerForWebSockets(UvicornWorker):
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        **UvicornWorker.CONFIG_KWARGS,
        "ws_ping_interval": settings.WS_PING_INTERVAL_S,
        "ws_ping_timeout": settings.WS_PING_TIMEOUT_S,
        "ws_max_size": settings.WS_MAX_MESSAGE_BYTES,
        "ws_per_message_deflate": False,
    }
