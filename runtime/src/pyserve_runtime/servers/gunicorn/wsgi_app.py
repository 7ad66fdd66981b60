"""The app as gunicorn runs it over WSGI: served_app.py, told the client's address by nginx.

gunicorn believes X-Forwarded-Proto from FORWARDED_ALLOW_IPS (forwarded_allow_ips in
deploy/gunicorn.conf.py), so the app sees the scheme the client used, but it leaves REMOTE_ADDR the
proxy's own address. From the same peers, REMOTE_ADDR becomes the client nginx names in
X-Forwarded-For, as the other servers (and gunicorn's uvicorn worker) do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pyserve_runtime.served_app import app as served
from pyserve_runtime.served_wsgi import WSGIApp
from pyserve_runtime.settings import from_environment
from pyserve_runtime.trusted_peers import TrustedPeers, client_address


def with_client_address(inner: WSGIApp, trusted: TrustedPeers) -> WSGIApp:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        forwarded_for = environ.get("HTTP_X_FORWARDED_FOR")
        if forwarded_for and environ.get("REMOTE_ADDR") in trusted:
            environ["REMOTE_ADDR"] = client_address(forwarded_for)
        return inner(environ, start_response)

    return app


app = with_client_address(served, TrustedPeers(from_environment().forwarded_allow_ips))
