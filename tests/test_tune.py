"""`make tune` on a user's own app: it loads APP_MODULE with the paths from the project's
locustfile, sweeps workers x threads (and gunicorn's worker class) under the container's limits,
shows its progress, and leaves a table, a CSV and a PNG, and nothing running."""

from __future__ import annotations

import csv
import os
import re
import subprocess
from pathlib import Path

import pytest

from pyserve_template.baking import TOOLS, project_venv

from .stack import CONFINED_TO

pytestmark = pytest.mark.e2e

# An app the sample knows nothing of: only /hello (and the /healthz the stack waits on) exist.
CUSTOM_APP = '''"""Someone's own WSGI app."""


def app(environ, start_response):
    if environ["PATH_INFO"] in ("/hello", "/healthz"):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not here"]
'''

# The user's own requests, in place of the sample's Visitor (the file's options stay).
CUSTOM_USER = """class Caller(FastHttpUser):
    def wait_time(self) -> float:
        return random.uniform(*think_time(self.environment.parsed_options.think_time))

    @task
    def hello(self) -> None:
        self.client.get("/hello")
"""


def test_make_tune_sweeps_a_users_own_app(fresh_bake) -> None:
    project = fresh_bake(framework="flask", server="gunicorn", workload="io_bound", cpu_limit="1")
    (project / "custom_app.py").write_text(CUSTOM_APP)
    locustfile = project / "loadtest" / "locustfile.py"
    text = locustfile.read_text()
    locustfile.write_text(text[: text.index("class Visitor")] + CUSTOM_USER)
    venv = project_venv(project, dev=True)
    env = {
        **os.environ,
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "APP_MODULE": "custom_app:app",
        "LOCUST": str(TOOLS / "locust"),  # the suite's, at loadtest/pyproject.toml's pin
        "TUNE_ARGS": "--workers 1,2 --threads 4 --duration 3 --users 16",
    }
    env.pop("PYTHONPATH", None)
    make = ["make", "tune", f"PYSERVE={venv / 'bin' / 'pyserve'}"]
    result = subprocess.run(make, cwd=project, env=env, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]

    # Under the container's 1 CPU where a cgroup can be made; otherwise it says what it measured under.
    assert "confined to 1 CPU, 512 MiB" in output or "measuring under this whole machine" in output
    # 1 and 2 gthread workers with 4 threads, and the plan's 3 workers as sync: progress for each.
    for number in (1, 2, 3):
        assert f"tune: [{number}/3]" in output
    assert re.search(r"^cores\s+memory\s+class\s+workers\s+threads\s+requests/s\s+p95 ms\s+failures", output, re.M)
    assert output.count("<- best") == 1

    reports = project / "loadtest" / "reports"
    with (reports / "tune.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["worker_class"], row["workers"], row["threads"]) for row in rows] == [
        ("gthread", "1", "4"),
        ("gthread", "2", "4"),
        ("sync", "3", "1"),
    ]
    assert all(int(row["requests"]) > 0 and int(row["failures"]) == 0 for row in rows), rows
    # What the metrics saw: some requests in flight in each worker, on average never more than its
    # threads, and a time in the queue for every row.
    for row in rows:
        assert 0 < float(row["in_flight_per_worker"]) <= 1.05 * int(row["threads"]), row
        assert row["queue_p95_ms"].startswith("<= "), row
    assert (reports / "tune.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The load came from the project's locustfile: its one path, answered by the custom app.
    for stats in (reports / "tune").glob("*_stats.csv"):
        with stats.open() as handle:
            assert {row["Name"] for row in csv.DictReader(handle)} == {"/hello", "Aggregated"}

    for log in (reports / "tune").glob("*.log"):
        text = log.read_text()
        assert text.rstrip().endswith("local: stopped"), text[-2000:]
        for places in CONFINED_TO.findall(text):
            assert not any(Path(place).exists() for place in places.split(", ")), "a cgroup was left behind"
