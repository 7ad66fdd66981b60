"""The sample Flask app (WSGI). Replace it with yours: APP_MODULE points the server at it."""

from __future__ import annotations

import time

from flask import Flask, Response, abort, jsonify, request

from . import {% if cookiecutter.database != "none" %}database, {% endif %}site
{%- if cookiecutter.static_strategy == "whitenoise" %}
from .static_files import serve_static
{%- endif %}

# Static files are not Flask's job here: nginx, WhiteNoise or a CDN serves /static/.
app = Flask(__name__, static_folder=None)


def requested_ms() -> int:
    try:
        return site.duration_ms(request.args.get("ms"))
    except ValueError:
        abort(400)


@app.get("/")
def index() -> Response:
    return Response(site.index_html(), mimetype="text/html")


@app.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@app.get("/api/io")
def api_io() -> Response:
    ms = requested_ms()
    time.sleep(ms / 1000)  # stands for a database or HTTP call: blocks this thread, not the CPU
    return jsonify(waited_ms=ms)


@app.route("/api/request", methods=["GET", "POST"])
def api_request() -> Response:
    return jsonify(site.request_seen(request.scheme, request.host, request.remote_addr, request.url))


@app.get("/api/cpu")
def api_cpu() -> Response:
    return jsonify(site.burn_cpu(requested_ms()))
{%- if cookiecutter.database != "none" %}


@app.get("/api/db")
def api_db() -> Response:
    ms = requested_ms()
    number = database.visit(ms)  # a query through this worker's pool: holds one connection, on this thread
    return jsonify(db_ms=ms, visit=number)


@app.get("/readyz")
def readyz() -> tuple[Response, int]:
    # Readiness, not liveness: a database outage takes the pod out of the Service, it does not restart it.
    if database.ready():
        return jsonify(database="ok"), 200
    return jsonify(database="unavailable"), 503
{%- endif %}
{%- if cookiecutter.static_strategy == "whitenoise" %}


# static_strategy=whitenoise: the app answers /static/ itself (see static_files.py).
app.wsgi_app = serve_static(app.wsgi_app)
{%- endif %}
