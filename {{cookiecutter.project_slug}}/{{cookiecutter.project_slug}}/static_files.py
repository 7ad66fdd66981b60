"""The app serves its own static files (static_strategy=whitenoise), compressed and cached for a year.

{% if cookiecutter.__interface == "wsgi" -%}
WhiteNoise wraps the WSGI app: it answers /static/ from memory-mapped files and passes the rest on.
{%- else -%}
ServeStatic (WhiteNoise's maintained fork with ASGI support) wraps the ASGI app.
{%- endif %}
"""

from __future__ import annotations

{% if cookiecutter.__interface == "wsgi" -%}
from whitenoise import WhiteNoise
{%- else -%}
from servestatic import ServeStaticASGI
{%- endif %}

from . import site

ONE_YEAR = 365 * 24 * 3600


def serve_static(app):  # noqa: ANN001, ANN201 - any {{ cookiecutter.__interface | upper }} app
    {%- if cookiecutter.__interface == "wsgi" %}
    return WhiteNoise(app, root=site.STATIC_DIR, prefix="static/", max_age=ONE_YEAR)
    {%- else %}
    return ServeStaticASGI(app, root=site.STATIC_DIR, prefix="static/", max_age=ONE_YEAR)
    {%- endif %}
