"""Start the app server: the one command line that the Dockerfile, compose and `make local` run.

It computes the plan (deploy/tuning.py), logs it as one JSON line, and replaces itself with the
server process (exec), so the server is PID 1's direct child and gets SIGTERM itself.

    python deploy/serve.py              # APP_MODULE, BIND (or APP_PORT) from the environment

It also holds what the health checks need to know about the app: HEALTH_PATH and LIVENESS_PATH.
"""

from __future__ import annotations

import importlib
import os
import sys
import tomllib
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent
sys.path.insert(0, str(DEPLOY))

import server_command  # noqa: E402  (this project's server: deploy/server_command.py)
import tuning  # noqa: E402

# Answered by the server layer itself (deploy/served_app.py), never by the app: "the server is up".
LIVENESS_PATH = "/.alive"


def app_settings() -> dict[str, str]:
    """[app] in deploy/stack.toml: the module the server runs and the path of its own health check."""
    with (DEPLOY / "stack.toml").open("rb") as handle:
        return tomllib.load(handle)["app"]


def app_module() -> str:
    return os.environ.get("APP_MODULE") or app_settings()["module"]


def health_path() -> str:
    """The app's own health check: HEALTH_PATH, else stack.toml's health_path when the app served is
    the one stack.toml names. Another app (APP_MODULE set) may have none: then "" and the checks use
    the server's LIVENESS_PATH. HEALTH_PATH="" says so for stack.toml's app too."""
    if "HEALTH_PATH" in os.environ:
        return os.environ["HEALTH_PATH"]
    settings = app_settings()
    return settings.get("health_path", "") if app_module() == settings["module"] else ""


def readiness_path() -> str:
    """What the healthchecks and `make local` wait on: the app's own check, else the server's."""
    return health_path() or LIVENESS_PATH


def load_app(spec: str) -> object:
    """Import "package.module:attribute" as every server does."""
    module_name, _, attribute = spec.partition(":")
    target: object = importlib.import_module(module_name)
    for name in (attribute or "app").split("."):
        target = getattr(target, name)
    return target


def bind() -> str:
    return os.environ.get("BIND") or f"127.0.0.1:{os.environ.get('APP_PORT', '8000')}"


def main() -> None:
    try:
        plan = tuning.start_up_plan()
    except tuning.TuningError as error:
        sys.exit(f"serve: {error}")
    print(plan.as_json(), file=sys.stderr, flush=True)
    argv = server_command.argv(plan, bind())
    # The project root on PYTHONPATH so that APP_MODULE imports as it does in tests; deploy/ for
    # the server's own config modules.
    paths = [str(DEPLOY.parent), str(DEPLOY), os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(path for path in paths if path)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main()
