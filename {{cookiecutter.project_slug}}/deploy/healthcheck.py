"""The container's HEALTHCHECK (python:*-slim has no curl): exit 0 when the app server answers.

    python deploy/healthcheck.py           # ready: the app's own check (HEALTH_PATH), else --alive
    python deploy/healthcheck.py --alive   # alive: the server layer's own answer (LIVENESS_PATH)

The second needs nothing of the app, so any app APP_MODULE names can be health-checked.
"""

import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve import LIVENESS_PATH, bind, readiness_path

path = LIVENESS_PATH if "--alive" in sys.argv[1:] else readiness_path()
port = bind().rpartition(":")[2]
# Host "localhost": an app that checks Host (Django's ALLOWED_HOSTS) accepts it by default.
request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": "localhost"})
try:
    with urllib.request.urlopen(request, timeout=3) as response:
        sys.exit(0 if response.status == 200 else 1)
except OSError as error:
    sys.exit(f"healthcheck: {path}: {error}")
