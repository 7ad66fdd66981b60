"""Start the app server: the one command line that the Dockerfile, compose and `make local` run.

It computes the plan (tuning/), logs it as one JSON line, raises the open-file limit to what
the plan's WebSockets need, empties the directory where the
workers will write their metrics, starts the metrics endpoint (metrics_server.py) and
replaces itself with the server process (exec), so the server is PID 1's direct child and gets
SIGTERM itself. With a database, the plan's pool size goes to the app as DB_POOL_SIZE: each worker's
pool opens at most that many connections.

    pyserve serve              # APP_MODULE, BIND (or APP_PORT) from the environment

Run from the project root, as every command here is: the server inherits that working directory
(or PYTHONPATH), from which it imports APP_MODULE.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
from importlib import import_module

from . import servers, settings, tuning


def load_app(spec: str) -> object:
    """Import "package.module:attribute" as every server does."""
    module_name, _, attribute = spec.partition(":")
    target: object = import_module(module_name)
    for name in (attribute or "app").split("."):
        target = getattr(target, name)
    return target


def fresh_metrics_dir(current: settings.Settings) -> None:
    """The workers' metric files start empty: a previous run's would be counted as this one's
    (prometheus_client reads PROMETHEUS_MULTIPROC_DIR in every worker)."""
    shutil.rmtree(current.metrics_dir, ignore_errors=True)
    current.metrics_dir.mkdir(parents=True, mode=0o700)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(current.metrics_dir)


def raise_open_files_limit(needed: int) -> None:
    """The soft limit on open files up to what each worker may need (the plan's open_files_per_worker),
    as far as the hard limit allows; the server and its workers inherit it. Most systems start a
    process at 1024, below a thousand WebSockets on one worker."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if wanted > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if wanted < needed:
        print(
            f"serve: open files limited to {hard} (the hard limit), below the {needed} a worker may need;"
            " raise it (docker run --ulimit nofile=...) or lower WS_CONNECTIONS",
            file=sys.stderr,
            flush=True,
        )


def plan_line(plan: tuning.Plan, current: settings.Settings) -> str:
    """The plan as one JSON line, with the release it serves: what a deploy's logs show first."""
    return json.dumps({**json.loads(plan.as_json()), "version": current.version, "revision": current.revision})


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description="Start the app server.").parse_args(argv)
    try:
        plan = tuning.start_up_plan()
        current = settings.from_environment()
        argv = servers.argv(settings.project().server, plan, current)
    except (tuning.TuningError, settings.SettingError) as error:
        sys.exit(f"serve: {error}")
    print(plan_line(plan, current), file=sys.stderr, flush=True)
    if plan.db_pool_size is not None:
        os.environ["DB_POOL_SIZE"] = str(plan.db_pool_size)
    raise_open_files_limit(plan.open_files_per_worker)
    fresh_metrics_dir(current)
    if current.metrics_port is not None:
        # A child of this process, which the exec below makes the server's: it exits with the server.
        subprocess.Popen([sys.executable, "-m", "pyserve_runtime.metrics_server"])
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main()
