"""pyserve-runtime: a Python web service sized from its container, served behind nginx.

The `pyserve` command (cli.py) starts the app server with as many workers and threads as the
container's CPU and memory limits allow (tuning/), in front of the app a layer of its own
(served_app.py: liveness, request ids, metrics, access lines, long-lived connections), and runs the
project's tools. What a project chose at bake reaches it as deploy/stack.toml (settings.py).
"""

__version__ = "0.1.0"
