"""The app as granian runs it: served_app.py, with X-Forwarded-For and X-Forwarded-Proto
honoured only when they come from FORWARDED_ALLOW_IPS (the proxy in front). granian reads no proxy
headers itself.
"""

from granian.utils.proxies import wrap_asgi_with_proxy_headers, wrap_wsgi_with_proxy_headers

from pyserve_runtime.served_app import app as served
from pyserve_runtime.settings import from_environment

_settings = from_environment()
_with_proxy_headers = wrap_wsgi_with_proxy_headers if _settings.interface == "wsgi" else wrap_asgi_with_proxy_headers
app = _with_proxy_headers(served, trusted_hosts=_settings.forwarded_allow_ips)
