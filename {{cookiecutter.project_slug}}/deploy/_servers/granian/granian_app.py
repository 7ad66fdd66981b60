"""The app as granian runs it: deploy/served_app.py, with X-Forwarded-For and X-Forwarded-Proto
honoured only when they come from FORWARDED_ALLOW_IPS (the proxy in front). granian reads no proxy
headers itself.
"""

import os

from granian.utils.proxies import wrap_{{ cookiecutter.__interface }}_with_proxy_headers
from served_app import app as served

trusted = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
app = wrap_{{ cookiecutter.__interface }}_with_proxy_headers(served, trusted_hosts=trusted)
