"""`make tune`: measure workers x threads around the plan, under the container's limits.

For each combination it starts the stack as `make local CONFINE=1` does (the app server in a cgroup
with the container's CPU and memory limits, nginx in front), runs loadtest/locustfile.py headless
with no think time, so that the users keep the server busy, and records requests/s, p95, failures
and the cgroup's peak memory. It then prints a table with the best row marked and writes
loadtest/reports/tune.csv and tune.png.

Beside each row, what the app's metrics (metrics.py) saw during the load: the requests in flight
per worker on average (the app's busy time over the run's length; against the threads, how full the
workers were) and the 95th percentile of the time requests queued before a worker took them up. A
row whose queue time grows while its workers are not full is held up elsewhere (the CPU quota).

It loads your app (APP_MODULE) with your locustfile's paths: put your own requests there first.
Where no cgroup can be made (not root, no delegated cgroup v2 tree), it says so and measures under
the whole machine instead, which is not what the container gets.

    make tune
    make tune TUNE_ARGS="--workers 2,3,4 --threads 8,16 --users 100 --duration 30"
    APP_MODULE=myapp.wsgi:application make tune
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from .confine import CannotConfine, Confinement
from .settings import PROJECT, locust_command
from .tuning import inputs, machine
from .tuning import model as tuning
from .values import format_memory

LOADTEST = PROJECT / "loadtest"
REPORTS = LOADTEST / "reports"

START_TIMEOUT = 90
USAGE = re.compile(r"local: confined app server: peak memory (.+) of .+, OOM kills (\d+)")


@dataclass(frozen=True)
class Setting:
    workers: int
    threads: int
    worker_class: str | None

    def label(self) -> str:
        kind = f" ({self.worker_class})" if self.worker_class else ""
        return f"{self.workers} workers x {self.threads} threads{kind}"


@dataclass
class Result:
    cores: str
    memory: str
    worker_class: str
    workers: int
    threads: int
    requests_per_s: float
    p95_ms: float
    failures: int
    requests: int
    peak_memory: str
    oom_kills: int
    in_flight_per_worker: float = 0.0
    queue_p95_ms: str = "-"
    note: str = ""


def around(value: int, upper: int) -> list[int]:
    """Half, the value and double: enough to see which side of the plan the optimum lies."""
    return sorted({max(1, math.ceil(value / 2)), value, min(upper, value * 2)})


def sweep(plan: tuning.Plan, workers: list[int] | None = None, threads: list[int] | None = None) -> list[Setting]:
    """The combinations to measure: around the plan unless given; for gunicorn's WSGI workers, also
    the plan's worker count in the sync class (no threads: gunicorn's leanest worker)."""
    workers = workers or around(plan.workers, tuning.MAX_WORKERS)
    threaded = tuning.uses_threads(plan.interface, plan.workload) or plan.threads > 1
    threads = threads or (around(plan.threads, tuning.MAX_THREADS) if threaded else [1])
    settings = []
    for worker_count in workers:
        for thread_count in threads:
            worker_class = plan.worker_class
            if plan.server == "gunicorn" and plan.interface == "wsgi":
                worker_class = "sync" if thread_count == 1 else "gthread"
            settings.append(Setting(worker_count, thread_count, worker_class))
    if plan.server == "gunicorn" and plan.interface == "wsgi" and 1 not in threads:
        settings.append(Setting(plan.workers, 1, "sync"))
    return settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def stop(process: subprocess.Popen[str]) -> None:
    """local.py stops its servers gracefully on SIGTERM; it leads its own process group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass(frozen=True)
class Scrape:
    """The metrics endpoint's samples at one moment: {'app_request_duration_seconds_sum': 1.5, ...}."""

    at: float
    samples: dict[str, float]

    @classmethod
    def take(cls, port: int) -> Scrape:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return cls(time.monotonic(), samples)


def saturation(before: Scrape, after: Scrape, workers: int) -> tuple[float, str]:
    """Requests in flight per worker on average (Little's law: busy seconds over elapsed seconds),
    and the bucket the 95th percentile of the queue time falls in."""

    def grew(name: str) -> float:
        return after.samples.get(name, 0.0) - before.samples.get(name, 0.0)

    busy = sum(grew(name) for name in after.samples if name.startswith("app_request_duration_seconds_sum{"))
    in_flight = busy / max(after.at - before.at, 1e-9) / workers
    queued = grew("app_request_queue_seconds_count")
    bounds = sorted(
        (float(name.split('le="')[1].rstrip('"}')), name)
        for name in after.samples
        if name.startswith("app_request_queue_seconds_bucket{")
    )
    p95 = next((bound for bound, name in bounds if queued and grew(name) >= 0.95 * queued), None)
    return float(f"{in_flight:.3g}"), "-" if p95 is None else f"<= {p95 * 1000:g}"


def start_stack(setting: Setting, confine: bool, log: Path) -> tuple[subprocess.Popen[str], int, int]:
    http_port = free_port()
    metrics_port = free_port()
    env = {
        **os.environ,
        "HTTP_PORT": str(http_port),
        "APP_PORT": str(free_port()),
        "METRICS_PORT": str(metrics_port),
        "WEB_CONCURRENCY": str(setting.workers),
        "WEB_THREADS": str(setting.threads),
    }
    if setting.worker_class in {"sync", "gthread"}:
        env["GUNICORN_CMD_ARGS"] = f"--worker-class {setting.worker_class}"  # beats gunicorn.conf.py
    command = [sys.executable, "-m", "pyserve_runtime", "local", *(["--confine"] if confine else [])]
    log.write_text("")
    # Append mode: nginx reopens /dev/stderr with an offset of its own, which would overwrite the log.
    with log.open("a") as output:
        process = subprocess.Popen(
            command, cwd=PROJECT, env=env, stdout=output, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
    deadline = time.monotonic() + START_TIMEOUT
    while "local: ready on" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise SystemExit(f"tune: the stack did not start; its log:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)
    return process, http_port, metrics_port


def run_locust(http_port: int, users: int, duration: int, prefix: Path) -> dict[str, str]:
    """The project's locustfile, headless, every user asking again at once; the totals row."""
    command = [
        *locust_command(), "--config", str(LOADTEST / "locust.conf"),
        "--host", f"http://127.0.0.1:{http_port}",
        "--users", str(users), "--spawn-rate", str(users), "--run-time", f"{duration}s",
        "--think-time", "0", "--csv", str(prefix), "--html", f"{prefix}.html",
        # The sweep records failures and latency; it does not stop at the load test's thresholds.
        "--max-fail-ratio", "1", "--max-p95-ms", "1e9",
    ]  # fmt: skip
    try:
        ran = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, check=False, timeout=duration + 120)
    except FileNotFoundError:
        raise SystemExit(f"tune: no {command[0]} to run the load test with (LOCUST; `make tune` sets it)") from None
    stats = Path(f"{prefix}_stats.csv")
    if not stats.is_file():
        said = [line for line in ran.stderr.splitlines() if line.strip()] or ["(nothing said)"]
        raise SystemExit(f"tune: the load test wrote no statistics: {said[-1].strip()}")
    with stats.open() as handle:
        return next(row for row in csv.DictReader(handle) if row["Name"] == "Aggregated")


def measure(setting: Setting, args: argparse.Namespace, limits: tuple[str, str], confine: bool) -> Result:
    name = f"w{setting.workers}-t{setting.threads}-{setting.worker_class or 'default'}"
    log = REPORTS / "tune" / f"{name}.log"
    process, http_port, metrics_port = start_stack(setting, confine, log)
    try:
        before = Scrape.take(metrics_port)
        totals = run_locust(http_port, args.users, args.duration, REPORTS / "tune" / name)
        in_flight, queue_p95 = saturation(before, Scrape.take(metrics_port), setting.workers)
    finally:
        stop(process)
    usage = USAGE.search(log.read_text(errors="replace"))
    return Result(
        cores=limits[0],
        memory=limits[1],
        worker_class=setting.worker_class or "-",
        workers=setting.workers,
        threads=setting.threads,
        requests_per_s=round(float(totals["Requests/s"]), 1),
        p95_ms=float(totals["95%"] if totals["95%"] != "N/A" else 0),
        failures=int(totals["Failure Count"]),
        requests=int(totals["Request Count"]),
        peak_memory=usage.group(1) if usage else "not measured",
        oom_kills=int(usage.group(2)) if usage else 0,
        in_flight_per_worker=in_flight,
        queue_p95_ms=queue_p95,
    )


def mark_best(results: list[Result], plan: tuning.Plan) -> Result | None:
    """The most requests/s with no failure and no OOM kill; the lower p95 breaks a tie."""
    clean = [result for result in results if result.failures == 0 and result.oom_kills == 0]
    best = max(clean, key=lambda result: (result.requests_per_s, -result.p95_ms), default=None)
    for result in results:
        notes = []
        if (result.workers, result.threads) == (plan.workers, plan.threads):
            notes.append("the plan")
        if result is best:
            notes.append("<- best")
        result.note = ", ".join(notes)
    return best


COLUMNS = [
    ("cores", "cores"), ("memory", "memory"), ("class", "worker_class"), ("workers", "workers"),
    ("threads", "threads"), ("requests/s", "requests_per_s"), ("p95 ms", "p95_ms"), ("failures", "failures"),
    ("peak memory", "peak_memory"), ("OOM", "oom_kills"), ("in flight/worker", "in_flight_per_worker"),
    ("queue p95 ms", "queue_p95_ms"), ("", "note"),
]  # fmt: skip


def table(results: list[Result]) -> str:
    rows = [[title for title, _ in COLUMNS]]
    rows += [[f"{getattr(result, field):g}" if isinstance(getattr(result, field), float)
              else str(getattr(result, field)) for _, field in COLUMNS] for result in results]  # fmt: skip
    widths = [max(len(row[index]) for row in rows) for index in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in rows)  # fmt: skip


def write_csv(results: list[Result], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(asdict(results[0])))
        writer.writeheader()
        writer.writerows(asdict(result) for result in results)


def write_chart(results: list[Result], path: Path, title: str) -> str:
    """Requests/s as bars (the best one darker), p95 as points on a second axis."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no chart: matplotlib is not installed (`uv sync` installs the tune group)"
    labels = [f"{r.workers}x{r.threads}" + (f"\n{r.worker_class}" if r.worker_class != "-" else "") for r in results]
    figure, throughput = plt.subplots(figsize=(max(6, 1.1 * len(results)), 4.5))
    colors = ["#1f5f8b" if "best" in r.note else "#8fb8d6" for r in results]
    throughput.bar(labels, [r.requests_per_s for r in results], color=colors)
    throughput.set_ylabel("requests/s (bars)")
    throughput.set_xlabel("workers x threads")
    latency = throughput.twinx()
    latency.plot(labels, [r.p95_ms for r in results], "o", color="#c0392b")
    latency.set_ylabel("p95 ms (dots)")
    latency.set_ylim(bottom=0)
    throughput.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return f"chart: {path.relative_to(PROJECT)}"


def parse_counts(text: str) -> list[int]:
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give whole numbers >= 1, comma-separated (e.g. 2,4,8)")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Sweep workers x threads under the container's limits.")
    parser.add_argument("--workers", type=parse_counts, help="worker counts to try (default: around the plan)")
    parser.add_argument("--threads", type=parse_counts, help="thread counts to try (default: around the plan)")
    parser.add_argument("--users", type=int, default=64, help="simulated users, all asking back to back")
    parser.add_argument("--duration", type=int, default=20, help="seconds of load per combination")
    args = parser.parse_args(argv)

    plan = inputs.plan_from_environment(os.environ, machine.load_stack())
    try:
        Confinement.create(plan.cpus, plan.memory_limit_bytes, f"pyserve-tune-check-{os.getpid()}").remove()
        confine = True
        limits = (f"{plan.cpus:g}", format_memory(plan.memory_limit_bytes))
        print(f"tune: each run confined to {limits[0]} CPU, {limits[1]} (a cgroup), as in the container")
    except CannotConfine as error:
        confine = False
        found = machine.read_system_limits()
        cpus, _ = inputs.choose_limit("cpus", found, None)
        memory, _ = inputs.choose_limit("memory", found, None)
        limits = (f"{cpus:g}", format_memory(int(memory) if memory else None))
        print(f"tune: {error}; measuring under this whole machine ({limits[0]} CPU, {limits[1]}),")
        print(f"tune: not under the container's {plan.cpus:g} CPU, {format_memory(plan.memory_limit_bytes)}")

    settings = sweep(plan, args.workers, args.threads)
    runs = f"{len(settings)} runs of {args.duration} s"
    print(f"tune: the plan is {plan.workers} workers x {plan.threads} threads; {runs}")
    (REPORTS / "tune").mkdir(parents=True, exist_ok=True)
    results = []
    for number, setting in enumerate(settings, 1):
        print(f"tune: [{number}/{len(settings)}] {setting.label()} ...", flush=True)
        result = measure(setting, args, limits, confine)
        results.append(result)
        print(
            f"tune: [{number}/{len(settings)}] {result.requests_per_s:g} requests/s, p95 {result.p95_ms:g} ms,"
            f" {result.failures} failures, peak memory {result.peak_memory}",
            flush=True,
        )
    best = mark_best(results, plan)
    print()
    print(table(results))
    print()
    write_csv(results, REPORTS / "tune.csv")
    print(f"tune: table: {(REPORTS / 'tune.csv').relative_to(PROJECT)}")
    print("tune: " + write_chart(results, REPORTS / "tune.png", f"{plan.server} {plan.framework}, {limits[0]} CPU"))
    if best is None:
        print("tune: every run had failures or OOM kills: see loadtest/reports/tune/")
        return 1
    print(f"tune: best: WEB_CONCURRENCY={best.workers} WEB_THREADS={best.threads}", end="")
    print(f" (worker class {best.worker_class})" if best.worker_class != "-" else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
