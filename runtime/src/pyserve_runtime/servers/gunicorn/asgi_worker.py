"""gunicorn's ASGI worker: uvicorn-worker, its WebSockets pinged and their messages capped, without
per-message compression (settings.py's UVICORN_WEBSOCKETS, as uvicorn serves them)."""

from __future__ import annotations

from typing import Any, ClassVar

from uvicorn_worker import UvicornWorker

from pyserve_runtime.settings import UVICORN_WEBSOCKETS


class UvicornWorkerForWebSockets(UvicornWorker):  # type: ignore[misc]  # uvicorn-worker ships no types
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {**UvicornWorker.CONFIG_KWARGS, **UVICORN_WEBSOCKETS}
