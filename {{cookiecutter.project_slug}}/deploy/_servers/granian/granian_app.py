"""The app as granian runs it: deploy/served_app.py, with X-Forwarded-For and X-Forwarded-Proto
honoured only when they come from FORWARDED_ALLOW_IPS (the proxy in front). granian reads no proxy
headers itself.
"""

from granian.utils.proxies import wrap_{{ cookiecutter.__interface }}_with_proxy_headers

from .served_app import app as served
from .settings import from_environment

app = wrap_{{ cookiecutter.__interface }}_with_proxy_headers(served, trusted_hosts=from_environment().forwarded_allow_ips)
