"""The app as hypercorn runs it: deploy/served_app.py, with X-Forwarded-* trusted only from the proxy in front.

FORWARDED_ALLOW_IPS lists the proxy's addresses (default 127.0.0.1).
{%- if cookiecutter.__interface == "wsgi" %} hypercorn would run a WSGI app on the event
loop's default thread pool, sized from os.cpu_count() (the host's CPUs, not the container's); a2wsgi
runs it on a pool of the plan's size.
{%- endif %}
"""

import ipaddress

{% if cookiecutter.__interface == "wsgi" -%}
from a2wsgi import WSGIMiddleware
{% endif -%}
from hypercorn.middleware import ProxyFixMiddleware

from . import settings{% if cookiecutter.__interface == "wsgi" %}, tuning{% endif %}
from .served_app import app as served


class TrustedProxyFix:
    """hypercorn's ProxyFixMiddleware trusts one hop from anyone; this applies it only to the proxy."""

    def __init__(self, app, trusted: str) -> None:
        self.app = app
        self.fixed = ProxyFixMiddleware(app, mode="legacy", trusted_hops=1)
        names = [item.strip() for item in trusted.split(",") if item.strip()]
        self.trust_all = "*" in names
        self.networks = [ipaddress.ip_network(name, strict=False) for name in names if name != "*"]

    def trusts(self, scope: dict) -> bool:
        if self.trust_all:
            return True
        client = scope.get("client")
        try:
            address = ipaddress.ip_address(client[0]) if client else None
        except ValueError:  # a unix socket peer
            return False
        return address is not None and any(address in network for network in self.networks)

    async def __call__(self, scope, receive, send) -> None:
        target = self.fixed if scope["type"] != "lifespan" and self.trusts(scope) else self.app
        await target(scope, receive, send)

{% if cookiecutter.__interface == "wsgi" %}
inner = WSGIMiddleware(served, workers=tuning.start_up_plan().threads)
{%- else %}
inner = served
{%- endif %}
app = TrustedProxyFix(inner, settings.from_environment().forwarded_allow_ips)
