"""The container's HEALTHCHECK: exit 0 when the app server answers /healthz (python:*-slim has no curl)."""

import os
import sys
import urllib.request

port = (os.environ.get("BIND") or "").rpartition(":")[2] or os.environ.get("APP_PORT", "8000")
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as response:
        sys.exit(0 if response.status == 200 else 1)
except OSError as error:
    sys.exit(f"healthcheck: {error}")
