"""The container's HEALTHCHECK (python:*-slim has no curl): exit 0 when the app server answers.

    pyserve healthcheck           # ready: the app's own check (HEALTH_PATH), else --alive
    pyserve healthcheck --alive   # alive: the server layer's own answer (LIVENESS_PATH)

The second needs nothing of the app, so any app APP_MODULE names can be health-checked.
"""

import sys
import urllib.request

from .settings import LIVENESS_PATH, from_environment


def main(argv: list[str] | None = None) -> int:
    current = from_environment()
    path = LIVENESS_PATH if "--alive" in (sys.argv[1:] if argv is None else argv) else current.readiness_path
    # Host "localhost": an app that checks Host (Django's ALLOWED_HOSTS) accepts it by default.
    request = urllib.request.Request(f"http://127.0.0.1:{current.port}{path}", headers={"Host": "localhost"})
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            return 0 if response.status == 200 else 1
    except OSError as error:
        print(f"healthcheck: {path}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
