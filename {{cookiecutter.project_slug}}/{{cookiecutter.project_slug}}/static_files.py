"""The app serves its own static files (static_strategy=whitenoise), compressed, hashed ones cached for a year.

{% if cookiecutter.__interface == "wsgi" -%}
WhiteNoise wraps the WSGI app: it answers /static/ from the collected files and passes the rest on.
{%- else -%}
ServeStatic (WhiteNoise's maintained fork with ASGI support) wraps the ASGI app.
{%- endif %}
`pyserve static` must have run first (the Dockerfile and `make local` run it).
"""

from __future__ import annotations

import re

{% if cookiecutter.__interface == "wsgi" -%}
from whitenoise import WhiteNoise
{%- else -%}
from servestatic import ServeStaticASGI
{%- endif %}

from . import site

# css/site.0123456789ab.css: the name changes with the content, so browsers may keep it forever.
HASHED_NAME = re.compile(r"\.[0-9a-f]{12}\.\w+$")
# Unhashed names can change under the same URL: browsers revalidate after an hour.
UNHASHED_MAX_AGE = 3600


def is_hashed(path: str, url: str) -> bool:
    return HASHED_NAME.search(url) is not None


def serve_static(app):  # any {{ cookiecutter.__interface | upper }} app
    {%- if cookiecutter.__interface == "wsgi" %}
    serve = WhiteNoise
    {%- else %}
    serve = ServeStaticASGI
    {%- endif %}
    return serve(
        app, root=site.static_root(), prefix="static/", max_age=UNHASHED_MAX_AGE, immutable_file_test=is_hashed
    )
