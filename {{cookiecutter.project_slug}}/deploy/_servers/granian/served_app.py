"""The app as granian runs it: APP_MODULE, with X-Forwarded-For and X-Forwarded-Proto honoured only
when they come from FORWARDED_ALLOW_IPS (the proxy in front). granian reads no proxy headers itself.
"""

import os

from granian.utils.proxies import wrap_{{ cookiecutter.__interface }}_with_proxy_headers
from serve import app_module, load_app

app = wrap_{{ cookiecutter.__interface }}_with_proxy_headers(
    load_app(app_module()), trusted_hosts=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
)
